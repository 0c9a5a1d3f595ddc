//! Parsing of the Kafka JSON message schemas into a small model.

use std::collections::BTreeMap;

use serde_json::Value;

/// An inclusive version range; empty when `lo > hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) lo: i16,
    pub(crate) hi: i16,
}

impl Range {
    pub(crate) const NONE: Self = Self { lo: 1, hi: 0 };

    /// Parses `"0+"`, `"3-5"`, `"7"` or `"none"`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Self::NONE);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|e| format!("bad version {s:?}: {e}"))
        };
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Self {
                lo: num(lo)?,
                hi: i16::MAX,
            });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Ok(Self {
                lo: num(lo)?,
                hi: num(hi)?,
            });
        }
        let v = num(s)?;
        Ok(Self { lo: v, hi: v })
    }

    pub(crate) fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    pub(crate) fn contains(self, v: i16) -> bool {
        self.lo <= v && v <= self.hi
    }

    pub(crate) fn intersect(self, o: Self) -> Self {
        Self {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        }
    }

    /// A Rust boolean expression over `version` for this range, given the versions the
    /// code can run with (`valid`). Returns `"true"` or `"false"` when constant.
    pub(crate) fn cond(self, valid: Self) -> String {
        let r = self.intersect(valid);
        if r.is_empty() {
            return "false".into();
        }
        match (r.lo <= valid.lo, r.hi >= valid.hi) {
            (true, true) => "true".into(),
            (true, false) => format!("version <= {}", r.hi),
            (false, true) => format!("version >= {}", r.lo),
            (false, false) => format!("({}..={}).contains(&version)", r.lo, r.hi),
        }
    }

    /// Human form for docs: `"3-5"`, `"3+"`, `"none"`.
    pub(crate) fn human(self, valid: Self) -> String {
        let r = self.intersect(valid);
        if r.is_empty() {
            "none".into()
        } else if r.lo == r.hi {
            r.lo.to_string()
        } else {
            format!("{}-{}", r.lo, r.hi)
        }
    }
}

/// Primitive and composite field types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    Float64,
    Bool,
    Str,
    Bytes,
    Records,
    Uuid,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(s: &str) -> Self {
        if let Some(inner) = s.strip_prefix("[]") {
            return Self::Array(Box::new(Self::parse(inner)));
        }
        match s {
            "int8" => Self::Int8,
            "int16" => Self::Int16,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "uint16" => Self::Uint16,
            "float64" => Self::Float64,
            "bool" => Self::Bool,
            "string" => Self::Str,
            "bytes" => Self::Bytes,
            "records" => Self::Records,
            "uuid" => Self::Uuid,
            other => Self::Struct(other.to_string()),
        }
    }
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) versions: Range,
    pub(crate) nullable: Range,
    pub(crate) tagged: Range,
    pub(crate) tag: Option<i32>,
    pub(crate) ignorable: bool,
    pub(crate) default: Option<String>,
    pub(crate) about: String,
    /// A field-level `flexibleVersions` override (`RequestHeader.ClientId`).
    pub(crate) flexible: Option<Range>,
}

/// A struct: the message itself or a nested/common struct.
#[derive(Debug, Clone)]
pub(crate) struct Struct {
    pub(crate) name: String,
    pub(crate) fields: Vec<Field>,
    /// Versions in which this struct can appear.
    pub(crate) versions: Range,
}

/// One schema file.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) api_key: Option<i16>,
    pub(crate) valid: Range,
    pub(crate) flexible: Range,
    pub(crate) latest_unstable: bool,
    /// All structs, the top-level one first, then nested ones in schema order.
    pub(crate) structs: Vec<Struct>,
}

/// Removes `//` comments outside of string literals.
pub(crate) fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn range_of(v: &Value, key: &str) -> Result<Option<Range>, String> {
    str_of(v, key).map(Range::parse).transpose()
}

/// Parses one schema file's text.
pub(crate) fn parse_message(file: &str, text: &str) -> Result<Message, String> {
    let v: Value =
        serde_json::from_str(&strip_comments(text)).map_err(|e| format!("{file}: {e}"))?;
    let name = str_of(&v, "name").ok_or("missing name")?.to_string();
    let api_key = v.get("apiKey").and_then(Value::as_i64).map(|k| k as i16);
    let valid = range_of(&v, "validVersions")?.ok_or("missing validVersions")?;
    let flexible = range_of(&v, "flexibleVersions")?.unwrap_or(Range::NONE);
    let latest_unstable = v
        .get("latestVersionUnstable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut structs = Vec::new();
    let mut declared = BTreeMap::new();
    // Common structs are declared first so that fields can refer to them by name.
    if let Some(common) = v.get("commonStructs").and_then(Value::as_array) {
        for c in common {
            let cname = str_of(c, "name").ok_or("common struct without name")?;
            let versions = range_of(c, "versions")?.unwrap_or(valid);
            let fields = parse_fields(c, &mut structs, &mut declared)?;
            declared.insert(cname.to_string(), ());
            structs.push(Struct {
                name: cname.to_string(),
                fields,
                versions,
            });
        }
    }
    let fields = parse_fields(&v, &mut structs, &mut declared)?;
    structs.insert(
        0,
        Struct {
            name: name.clone(),
            fields,
            versions: valid,
        },
    );
    for s in &structs {
        for f in &s.fields {
            check_struct_ref(&f.ty, &declared, file)?;
        }
    }
    Ok(Message {
        file: file.to_string(),
        name,
        api_key,
        valid,
        flexible,
        latest_unstable,
        structs,
    })
}

fn check_struct_ref(ty: &Ty, declared: &BTreeMap<String, ()>, file: &str) -> Result<(), String> {
    match ty {
        Ty::Struct(n) if !declared.contains_key(n) => Err(format!("{file}: unknown struct {n}")),
        Ty::Array(inner) => check_struct_ref(inner, declared, file),
        _ => Ok(()),
    }
}

fn parse_fields(
    v: &Value,
    structs: &mut Vec<Struct>,
    declared: &mut BTreeMap<String, ()>,
) -> Result<Vec<Field>, String> {
    let mut out = Vec::new();
    let Some(list) = v.get("fields").and_then(Value::as_array) else {
        return Ok(out);
    };
    for f in list {
        let name = str_of(f, "name").ok_or("field without name")?.to_string();
        let ty = Ty::parse(str_of(f, "type").ok_or("field without type")?);
        let versions = range_of(f, "versions")?.ok_or_else(|| format!("{name}: no versions"))?;
        let nullable = range_of(f, "nullableVersions")?.unwrap_or(Range::NONE);
        let tagged = range_of(f, "taggedVersions")?.unwrap_or(Range::NONE);
        let tag = f.get("tag").and_then(Value::as_i64).map(|t| t as i32);
        let ignorable = f.get("ignorable").and_then(Value::as_bool).unwrap_or(false);
        let default = match f.get("default") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let about = str_of(f, "about").unwrap_or("").to_string();
        let flexible = range_of(f, "flexibleVersions")?;
        let elem = match &ty {
            Ty::Array(inner) => inner.as_ref(),
            t => t,
        };
        if let (Ty::Struct(sname), Some(_)) = (elem, f.get("fields")) {
            if declared.contains_key(sname) {
                return Err(format!("struct {sname} declared twice"));
            }
            let fields = parse_fields(f, structs, declared)?;
            declared.insert(sname.clone(), ());
            structs.push(Struct {
                name: sname.clone(),
                fields,
                versions,
            });
        }
        out.push(Field {
            name,
            ty,
            versions,
            nullable,
            tagged,
            tag,
            ignorable,
            default,
            about,
            flexible,
        });
    }
    Ok(out)
}

/// `ThrottleTimeMs` -> `throttle_time_ms`.
pub(crate) fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field name as a Rust identifier: snake case, keywords as raw identifiers.
pub(crate) fn field_ident(name: &str) -> String {
    let s = snake(name);
    const KEYWORDS: &[&str] = &[
        "type", "match", "ref", "move", "loop", "use", "mod", "fn", "impl", "struct", "enum",
        "where", "async", "await", "dyn", "in", "for", "if", "else", "let", "as", "const",
        "static", "trait", "true", "false", "return", "break", "continue", "crate", "extern",
        "mut", "pub", "super", "unsafe", "while", "box", "yield", "abstract", "final", "macro",
        "override", "priv", "typeof", "unsized", "virtual", "do", "try", "gen",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_inside_strings_survive() {
        let s = strip_comments("{\"a\": \"http://x\" // c\n}");
        assert_eq!(s, "{\"a\": \"http://x\" \n}");
    }

    #[test]
    fn snake_case() {
        assert_eq!(snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake("TopicId"), "topic_id");
        assert_eq!(snake("ApiVersionsRequest"), "api_versions_request");
        assert_eq!(field_ident("Type"), "r#type");
    }

    #[test]
    fn ranges() {
        let valid = Range::parse("0-11").unwrap();
        assert_eq!(Range::parse("3+").unwrap().cond(valid), "version >= 3");
        assert_eq!(Range::parse("0+").unwrap().cond(valid), "true");
        assert_eq!(Range::parse("none").unwrap().cond(valid), "false");
        assert_eq!(
            Range::parse("2-4").unwrap().cond(valid),
            "(2..=4).contains(&version)"
        );
    }
}
