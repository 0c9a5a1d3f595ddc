//! Emission of the Rust codec for one message.

use std::fmt::Write;

use crate::schema::{Field, Message, Range, Struct, Ty, field_ident, snake};

/// Negates a condition produced by [`Range::cond`].
pub(crate) fn not(c: &str) -> String {
    if c == "true" {
        "false".into()
    } else if c == "false" {
        "true".into()
    } else if let Some(v) = c.strip_prefix("version >= ") {
        format!("version < {v}")
    } else if let Some(v) = c.strip_prefix("version <= ") {
        format!("version > {v}")
    } else {
        format!("!{c}")
    }
}

/// `a && b` with constant folding.
pub(crate) fn and(a: &str, b: &str) -> String {
    match (a, b) {
        ("false", _) | (_, "false") => "false".into(),
        ("true", x) | (x, "true") => x.into(),
        _ => format!("{a} && {b}"),
    }
}

/// Versions in which a field is a regular (not tagged) field.
pub(crate) fn regular_range(f: &Field) -> Range {
    let t = f.tagged.intersect(f.versions);
    if t.is_empty() {
        return f.versions;
    }
    if t == f.versions {
        return Range::NONE;
    }
    assert!(
        t.hi >= f.versions.hi,
        "{}: tagged versions must be a suffix",
        f.name
    );
    Range {
        lo: f.versions.lo,
        hi: t.lo - 1,
    }
}

/// Per-struct context: the message and the versions this struct's code runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) msg: &'a Message,
    pub(crate) valid: Range,
}

impl Ctx<'_> {
    pub(crate) fn cond(&self, r: Range) -> String {
        r.cond(self.valid)
    }

    pub(crate) fn flexible(&self) -> String {
        self.cond(self.msg.flexible)
    }

    /// The expression telling whether `f` uses compact encodings.
    fn field_flex(&self, f: &Field) -> String {
        match f.flexible {
            Some(r) => self.cond(r),
            None => "flexible".into(),
        }
    }

    /// Whether the field is nullable in any version the struct runs with.
    pub(crate) fn optional(&self, f: &Field) -> bool {
        matches!(f.ty, Ty::Records)
            || (matches!(f.ty, Ty::Str | Ty::Bytes | Ty::Array(_))
                && !f
                    .nullable
                    .intersect(f.versions)
                    .intersect(self.valid)
                    .is_empty())
    }

    /// Nullability of `f`, evaluated where the field is present.
    pub(crate) fn nullable_cond(&self, f: &Field) -> String {
        f.nullable.cond(self.valid.intersect(f.versions))
    }
}

pub(crate) fn base_ty(ty: &Ty) -> String {
    match ty {
        Ty::Int8 => "i8".into(),
        Ty::Int16 => "i16".into(),
        Ty::Int32 => "i32".into(),
        Ty::Int64 => "i64".into(),
        Ty::Uint16 => "u16".into(),
        Ty::Float64 => "f64".into(),
        Ty::Bool => "bool".into(),
        Ty::Str => "String".into(),
        Ty::Bytes => "Bytes".into(),
        Ty::Records => "Bytes".into(),
        Ty::Uuid => "[u8; 16]".into(),
        Ty::Struct(n) => n.clone(),
        Ty::Array(inner) => format!("Vec<{}>", base_ty(inner)),
    }
}

pub(crate) fn rust_ty(ctx: &Ctx<'_>, f: &Field) -> String {
    let b = base_ty(&f.ty);
    if ctx.optional(f) {
        format!("Option<{b}>")
    } else {
        b
    }
}

/// The default value expression and whether it equals the type's `Default`.
pub(crate) fn default_expr(ctx: &Ctx<'_>, f: &Field) -> (String, bool) {
    let d = f.default.as_deref();
    let int = |d: Option<&str>| -> i64 {
        match d {
            None | Some("") => 0,
            Some(s) => match s.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16).expect("hex default"),
                None => s
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad default {s}", f.name)),
            },
        }
    };
    let optional = ctx.optional(f);
    let is_null = d == Some("null");
    match &f.ty {
        Ty::Int8 | Ty::Int16 | Ty::Int32 | Ty::Int64 | Ty::Uint16 => {
            let v = int(d);
            (v.to_string(), v == 0)
        }
        Ty::Float64 => {
            let v: f64 = d
                .filter(|s| !s.is_empty())
                .map_or(0.0, |s| s.parse().expect("float"));
            (format!("{v:?}"), v == 0.0)
        }
        Ty::Bool => {
            let v = d == Some("true");
            (v.to_string(), !v)
        }
        Ty::Str => {
            let s = d.filter(|s| *s != "null").unwrap_or("");
            let inner = if s.is_empty() {
                "String::new()".to_string()
            } else {
                format!("String::from({s:?})")
            };
            match (optional, is_null) {
                (true, true) => ("None".into(), true),
                (true, false) => (format!("Some({inner})"), false),
                (false, _) => (inner, s.is_empty()),
            }
        }
        Ty::Bytes => match (optional, is_null) {
            (true, true) => ("None".into(), true),
            (true, false) => ("Some(Bytes::new())".into(), false),
            (false, _) => ("Bytes::new()".into(), true),
        },
        Ty::Records => ("None".into(), true),
        Ty::Uuid => ("[0; 16]".into(), true),
        Ty::Struct(n) => (format!("{n}::default()"), true),
        Ty::Array(_) => match (optional, is_null) {
            (true, true) => ("None".into(), true),
            (true, false) => ("Some(Vec::new())".into(), false),
            (false, _) => ("Vec::new()".into(), true),
        },
    }
}

/// An expression that is true when `self.<field>` differs from its default.
pub(crate) fn nondefault(ctx: &Ctx<'_>, f: &Field) -> String {
    let v = format!("self.{}", field_ident(&f.name));
    let (d, _) = default_expr(ctx, f);
    match (&f.ty, d.as_str()) {
        (Ty::Bool, "true") => format!("!{v}"),
        (Ty::Bool, _) => v,
        (_, "Vec::new()" | "String::new()" | "Bytes::new()") => format!("!{v}.is_empty()"),
        (_, "None") => format!("{v}.is_some()"),
        (_, "Some(String::new())") => format!("{v}.as_deref() != Some(\"\")"),
        (_, "Some(Vec::new())") => format!("{v}.as_ref().is_none_or(|v| !v.is_empty())"),
        (_, "Some(Bytes::new())") => format!("{v}.as_ref().is_none_or(|v| !v.is_empty())"),
        _ => format!("{v} != {d}"),
    }
}

/// Minimum encoded size of a value of `ty` in `version`.
fn min_size(msg: &Message, ty: &Ty, version: i16) -> usize {
    let flex = msg.flexible.contains(version);
    match ty {
        Ty::Int8 | Ty::Bool => 1,
        Ty::Int16 | Ty::Uint16 => 2,
        Ty::Int32 => 4,
        Ty::Int64 | Ty::Float64 => 8,
        Ty::Uuid => 16,
        Ty::Str => {
            if flex {
                1
            } else {
                2
            }
        }
        Ty::Bytes | Ty::Records | Ty::Array(_) => {
            if flex {
                1
            } else {
                4
            }
        }
        Ty::Struct(n) => {
            let s = msg.structs.iter().find(|s| &s.name == n).expect("struct");
            struct_min_size(msg, s, version)
        }
    }
}

fn struct_min_size(msg: &Message, s: &Struct, version: i16) -> usize {
    let fields: usize = s
        .fields
        .iter()
        .filter(|f| regular_range(f).contains(version))
        .map(|f| match (&f.ty, f.flexible) {
            (Ty::Str, Some(r)) if !r.contains(version) => 2,
            _ => min_size(msg, &f.ty, version),
        })
        .sum();
    fields + usize::from(msg.flexible.contains(version))
}

/// The smallest element size of an array of `ty` over the versions `valid`.
fn elem_min_size(msg: &Message, ty: &Ty, valid: Range) -> usize {
    (valid.lo..=valid.hi)
        .map(|v| min_size(msg, ty, v))
        .min()
        .unwrap_or(0)
}

fn dec_elem(ctx: &Ctx<'_>, f: &Field, ty: &Ty) -> String {
    let flex = ctx.field_flex(f);
    match ty {
        Ty::Int8 => "r.i8()".into(),
        Ty::Int16 => "r.i16()".into(),
        Ty::Int32 => "r.i32()".into(),
        Ty::Int64 => "r.i64()".into(),
        Ty::Uint16 => "r.u16()".into(),
        Ty::Float64 => "r.f64()".into(),
        Ty::Bool => "r.bool()".into(),
        Ty::Uuid => "r.uuid()".into(),
        Ty::Str => format!("r.string(wire::string_len({flex}))"),
        Ty::Bytes => format!("r.bytes(wire::bytes_len({flex}))"),
        Ty::Struct(n) => format!("{n}::decode(r, version)"),
        Ty::Records | Ty::Array(_) => panic!("{}: unsupported array element", f.name),
    }
}

/// Decoding expression of field `f` (value of its Rust type), reading from `r`.
fn dec(ctx: &Ctx<'_>, f: &Field) -> String {
    let flex = ctx.field_flex(f);
    let optional = ctx.optional(f);
    let n = ctx.nullable_cond(f);
    let null_err = format!("DecodeError::Invalid(\"null {}\")", f.name);
    let wrap = |nullable_read: String, nonnull_read: String| -> String {
        if !optional {
            nonnull_read
        } else if n == "true" {
            nullable_read
        } else if n == "false" {
            format!("Some({nonnull_read})")
        } else {
            format!("if {n} {{ {nullable_read} }} else {{ Some({nonnull_read}) }}")
        }
    };
    match &f.ty {
        Ty::Str => wrap(
            format!("r.nullable_string(wire::string_len({flex}))?"),
            format!("r.string(wire::string_len({flex}))?"),
        ),
        Ty::Bytes | Ty::Records => wrap(
            format!("r.nullable_bytes(wire::bytes_len({flex}))?"),
            format!("r.bytes(wire::bytes_len({flex}))?"),
        ),
        Ty::Array(inner) => {
            let min = elem_min_size(ctx.msg, inner, ctx.valid.intersect(f.versions));
            let read = format!(
                "wire::read_array(r, wire::bytes_len({flex}), {min}, |r| {})?",
                dec_elem(ctx, f, inner)
            );
            wrap(read.clone(), format!("{read}.ok_or({null_err})?"))
        }
        other => format!("{}?", dec_elem(ctx, f, other)),
    }
}

fn enc_elem(ctx: &Ctx<'_>, f: &Field, ty: &Ty) -> String {
    let flex = ctx.field_flex(f);
    let name = &f.name;
    match ty {
        Ty::Int8 => "w.put_i8(*e);".into(),
        Ty::Int16 => "w.put_i16(*e);".into(),
        Ty::Int32 => "w.put_i32(*e);".into(),
        Ty::Int64 => "w.put_i64(*e);".into(),
        Ty::Uint16 => "w.put_u16(*e);".into(),
        Ty::Float64 => "w.put_f64(*e);".into(),
        Ty::Bool => "w.put_u8(u8::from(*e));".into(),
        Ty::Uuid => "w.put_slice(e);".into(),
        Ty::Str => format!(
            "wire::put_bytes_checked(w, wire::string_len({flex}), Some(e.as_bytes()), {name:?})?;"
        ),
        Ty::Bytes => {
            format!("wire::put_bytes_checked(w, wire::bytes_len({flex}), Some(e), {name:?})?;")
        }
        Ty::Struct(_) => "e.encode(w, version)?;".into(),
        Ty::Records | Ty::Array(_) => panic!("{name}: unsupported array element"),
    }
}

/// Encoding statements of field `f` into `w`.
fn enc(ctx: &Ctx<'_>, f: &Field) -> String {
    let v = format!("self.{}", field_ident(&f.name));
    let flex = ctx.field_flex(f);
    let name = &f.name;
    let optional = ctx.optional(f);
    let n = ctx.nullable_cond(f);
    let mut out = String::new();
    if optional && n != "true" {
        let c = and(&not(&n), &format!("{v}.is_none()"));
        writeln!(
            out,
            "if {c} {{ return Err(EncodeError::NotNullable({name:?})); }}"
        )
        .unwrap();
    }
    let s = match &f.ty {
        Ty::Int8 => format!("w.put_i8({v});"),
        Ty::Int16 => format!("w.put_i16({v});"),
        Ty::Int32 => format!("w.put_i32({v});"),
        Ty::Int64 => format!("w.put_i64({v});"),
        Ty::Uint16 => format!("w.put_u16({v});"),
        Ty::Float64 => format!("w.put_f64({v});"),
        Ty::Bool => format!("w.put_u8(u8::from({v}));"),
        Ty::Uuid => format!("w.put_slice(&{v});"),
        Ty::Str => {
            let val = if optional {
                format!("{v}.as_deref().map(str::as_bytes)")
            } else {
                format!("Some({v}.as_bytes())")
            };
            format!("wire::put_bytes_checked(w, wire::string_len({flex}), {val}, {name:?})?;")
        }
        Ty::Bytes | Ty::Records => {
            let val = if optional {
                format!("{v}.as_deref()")
            } else {
                format!("Some(&{v}[..])")
            };
            format!("wire::put_bytes_checked(w, wire::bytes_len({flex}), {val}, {name:?})?;")
        }
        Ty::Struct(_) => format!("{v}.encode(w, version)?;"),
        Ty::Array(inner) => {
            let (len, iter) = if optional {
                (
                    format!("{v}.as_ref().map(Vec::len)"),
                    format!("{v}.iter().flatten()"),
                )
            } else {
                (format!("Some({v}.len())"), format!("&{v}"))
            };
            format!(
                "wire::put_array_len(w, wire::bytes_len({flex}), {len}, {name:?})?;\n\
                 for e in {iter} {{ {} }}",
                enc_elem(ctx, f, inner)
            )
        }
    };
    out.push_str(&s);
    out
}

fn doc_lines(out: &mut String, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            writeln!(out, "/// {line}").unwrap();
        }
    }
}

fn field_doc(ctx: &Ctx<'_>, f: &Field) -> String {
    let about = if f.about.trim().is_empty() {
        format!("The `{}` field.", f.name)
    } else {
        let a = f.about.trim().to_string();
        if a.ends_with('.') { a } else { format!("{a}.") }
    };
    let mut doc = format!(
        "{about}\n\nSupported API versions: {}",
        f.versions.human(ctx.valid)
    );
    if let Some(tag) = f.tag {
        write!(
            doc,
            " (tagged field {tag} in {})",
            f.tagged.human(ctx.valid)
        )
        .unwrap();
    }
    doc
}

/// Emits one struct with its `Default`, `decode` and `encode`.
pub(crate) fn emit_struct(out: &mut String, msg: &Message, s: &Struct, top: bool) {
    let valid = if top {
        msg.valid
    } else {
        s.versions.intersect(msg.valid)
    };
    let ctx = Ctx { msg, valid };
    let name = &s.name;
    // Type docs.
    if top {
        let key = msg
            .api_key
            .map(|k| format!(", API key {k}"))
            .unwrap_or_default();
        let flex = if msg.flexible.intersect(msg.valid).is_empty() {
            "never flexible".to_string()
        } else {
            format!("flexible from version {}", msg.flexible.lo)
        };
        doc_lines(
            out,
            &format!(
                "Kafka `{name}`{key}: versions {}, {flex}.",
                msg.valid.human(msg.valid)
            ),
        );
    } else {
        doc_lines(out, &format!("Struct `{name}` of [`{}`].", msg.name));
    }
    let defaults: Vec<(String, bool)> = s.fields.iter().map(|f| default_expr(&ctx, f)).collect();
    let derive_default = defaults.iter().all(|(_, trivial)| *trivial);
    let derives = if derive_default {
        "Debug, Clone, PartialEq, Default"
    } else {
        "Debug, Clone, PartialEq"
    };
    writeln!(out, "#[derive({derives})]\npub struct {name} {{").unwrap();
    for f in &s.fields {
        doc_lines(out, &field_doc(&ctx, f));
        writeln!(out, "pub {}: {},", field_ident(&f.name), rust_ty(&ctx, f)).unwrap();
    }
    out.push_str(
        "/// Tagged fields this codec does not know, kept so they can be re-encoded.\n\
         pub unknown_tagged_fields: BTreeMap<i32, Bytes>,\n}\n\n",
    );
    if !derive_default {
        writeln!(
            out,
            "impl Default for {name} {{\nfn default() -> Self {{\nSelf {{"
        )
        .unwrap();
        for (f, (d, _)) in s.fields.iter().zip(&defaults) {
            writeln!(out, "{}: {d},", field_ident(&f.name)).unwrap();
        }
        out.push_str("unknown_tagged_fields: BTreeMap::new(),\n}\n}\n}\n\n");
    }
    writeln!(out, "impl {name} {{").unwrap();
    if top {
        if let Some(k) = msg.api_key {
            writeln!(
                out,
                "/// The API key of this message.\npub const API_KEY: i16 = {k};"
            )
            .unwrap();
        }
        let flex_min = if msg.flexible.intersect(msg.valid).is_empty() {
            "i16::MAX".to_string()
        } else {
            msg.flexible.lo.to_string()
        };
        writeln!(
            out,
            "/// Valid versions (min, max).\npub const VERSIONS: (i16, i16) = ({}, {});\n\
             /// First flexible version (`i16::MAX` if none).\npub const FLEXIBLE_MIN: i16 = {flex_min};\n",
            msg.valid.lo, msg.valid.hi
        )
        .unwrap();
    }
    emit_decode(out, &ctx, s, top);
    emit_encode(out, &ctx, s, top);
    out.push_str("}\n\n");
}

fn emit_decode(final_out: &mut String, ctx: &Ctx<'_>, s: &Struct, top: bool) {
    let out = &mut String::new();
    if top {
        let key = if ctx.msg.api_key.is_some() {
            "Self::API_KEY"
        } else {
            "-1"
        };
        writeln!(
            out,
            "if !(Self::VERSIONS.0..=Self::VERSIONS.1).contains(&version) {{\n\
             return Err(DecodeError::UnsupportedVersion {{ api_key: {key}, version }});\n}}"
        )
        .unwrap();
    }
    let flexible = ctx.flexible();
    emit_flexible(out, &flexible, s);
    for f in &s.fields {
        let id = field_ident(&f.name);
        let reg = ctx.cond(regular_range(f));
        let tagged = !f
            .tagged
            .intersect(f.versions)
            .intersect(ctx.valid)
            .is_empty();
        let m = if tagged { "mut " } else { "" };
        let (d, _) = default_expr(ctx, f);
        let value = match reg.as_str() {
            "true" => dec(ctx, f),
            "false" => d,
            c => format!("if {c} {{ {} }} else {{ {d} }}", dec(ctx, f)),
        };
        writeln!(out, "let {m}{id} = {value};").unwrap();
    }
    let tagged: Vec<&Field> = sorted_tagged(ctx, s);
    if flexible == "false" {
        out.push_str("let unknown_tagged_fields = BTreeMap::new();\n");
    } else {
        out.push_str("let mut unknown_tagged_fields = BTreeMap::new();\n");
        let mut body = String::new();
        if tagged.is_empty() {
            body.push_str("|_, _| Ok(false)");
        } else {
            body.push_str("|tag, r| {\nmatch tag {\n");
            for f in &tagged {
                let c = ctx.cond(f.tagged.intersect(f.versions));
                let guard = if c == "true" {
                    String::new()
                } else {
                    format!(" if {c}")
                };
                writeln!(
                    body,
                    "{}{guard} => {} = {},",
                    f.tag.unwrap(),
                    field_ident(&f.name),
                    dec(ctx, f)
                )
                .unwrap();
            }
            body.push_str("_ => return Ok(false),\n}\nOk(true)\n}");
        }
        let head = if flexible == "true" {
            "{"
        } else {
            "if flexible {"
        };
        writeln!(
            out,
            "{head}\nwire::read_tagged_fields(r, &mut unknown_tagged_fields, {body})?;\n}}"
        )
        .unwrap();
    }
    out.push_str("Ok(Self {\n");
    for f in &s.fields {
        writeln!(out, "{},", field_ident(&f.name)).unwrap();
    }
    out.push_str("unknown_tagged_fields,\n})\n}\n\n");
    let v = if uses_version(out) {
        "version"
    } else {
        "_version"
    };
    writeln!(
        final_out,
        "/// Decodes a value of the given version from `r`.\n\
         pub fn decode(r: &mut Reader, {v}: i16) -> Result<Self, DecodeError> {{\n{out}"
    )
    .unwrap();
}

/// Whether `code` mentions the identifier `version`.
fn uses_version(code: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices("version").any(|(i, m)| {
        !code[..i].chars().next_back().is_some_and(ident)
            && !code[i + m.len()..].chars().next().is_some_and(ident)
    })
}

/// Declares `flexible` when some code reads it.
fn emit_flexible(out: &mut String, flexible: &str, s: &Struct) {
    let used = !matches!(flexible, "true" | "false")
        || s.fields
            .iter()
            .any(|f| f.flexible.is_none() && needs_flex(&f.ty));
    if used {
        writeln!(out, "let flexible = {flexible};").unwrap();
    }
}

fn needs_flex(ty: &Ty) -> bool {
    matches!(ty, Ty::Str | Ty::Bytes | Ty::Records | Ty::Array(_))
}

fn sorted_tagged<'a>(ctx: &Ctx<'_>, s: &'a Struct) -> Vec<&'a Field> {
    let mut tagged: Vec<&Field> = s
        .fields
        .iter()
        .filter(|f| {
            !f.tagged
                .intersect(f.versions)
                .intersect(ctx.valid)
                .is_empty()
        })
        .collect();
    tagged.sort_by_key(|f| f.tag.expect("tagged field without tag"));
    tagged
}

fn emit_encode(final_out: &mut String, ctx: &Ctx<'_>, s: &Struct, top: bool) {
    let out = &mut String::new();
    if top {
        writeln!(
            out,
            "if !(Self::VERSIONS.0..=Self::VERSIONS.1).contains(&version) {{\n\
             return Err(EncodeError::InvalidVersion {{ message: {:?}, version }});\n}}",
            s.name
        )
        .unwrap();
    }
    let flexible = ctx.flexible();
    emit_flexible(out, &flexible, s);
    for f in &s.fields {
        let reg = ctx.cond(regular_range(f));
        match reg.as_str() {
            "false" => {}
            "true" => writeln!(out, "{}", enc(ctx, f)).unwrap(),
            c => writeln!(out, "if {c} {{\n{}\n}}", enc(ctx, f)).unwrap(),
        }
        if !f.ignorable {
            let absent = not(&ctx.cond(f.versions));
            let c = and(&absent, &nondefault(ctx, f));
            if c != "false" {
                writeln!(
                    out,
                    "if {c} {{\nreturn Err(EncodeError::FieldNotInVersion {{ field: {:?}, version }});\n}}",
                    f.name
                )
                .unwrap();
            }
        }
    }
    if flexible != "false" {
        let tagged = sorted_tagged(ctx, s);
        let head = if flexible == "true" {
            "{"
        } else {
            "if flexible {"
        };
        writeln!(out, "{head}").unwrap();
        if tagged.is_empty() {
            out.push_str("wire::put_tagged_fields(w, Vec::new(), &self.unknown_tagged_fields);\n");
        } else {
            out.push_str("let mut tagged = Vec::new();\n");
            for f in &tagged {
                let c = and(
                    &ctx.cond(f.tagged.intersect(f.versions)),
                    &nondefault(ctx, f),
                );
                writeln!(
                    out,
                    "if {c} {{\nlet mut b = BytesMut::new();\n{{\nlet w = &mut b;\n{}\n}}\ntagged.push(({}, b));\n}}",
                    enc(ctx, f),
                    f.tag.unwrap()
                )
                .unwrap();
            }
            out.push_str("wire::put_tagged_fields(w, tagged, &self.unknown_tagged_fields);\n");
        }
        out.push_str("}\n");
    }
    out.push_str("Ok(())\n}\n");
    let v = if uses_version(out) {
        "version"
    } else {
        "_version"
    };
    writeln!(
        final_out,
        "/// Encodes this value in the given version, appending to `w`.\n\
         pub fn encode(&self, w: &mut BytesMut, {v}: i16) -> Result<(), EncodeError> {{\n{out}"
    )
    .unwrap();
}

/// The whole module file of one message.
pub(crate) fn emit_message(msg: &Message) -> String {
    let mut body = String::new();
    for (i, s) in msg.structs.iter().enumerate() {
        emit_struct(&mut body, msg, s, i == 0);
    }
    let mut out = String::new();
    writeln!(
        out,
        "// @generated by portask-codegen from {}; do not edit",
        msg.file
    )
    .unwrap();
    writeln!(
        out,
        "//! The `{}` message, generated from `{}`.\n",
        msg.name, msg.file
    )
    .unwrap();
    out.push_str("use std::collections::BTreeMap;\n\n");
    if body.contains("w.put_") {
        out.push_str("use bytes::{BufMut, Bytes, BytesMut};\n\n");
    } else {
        out.push_str("use bytes::{Bytes, BytesMut};\n\n");
    }
    out.push_str(
        "use crate::error::{DecodeError, EncodeError};\nuse crate::wire::{self, Reader};\n\n",
    );
    out.push_str(&body);
    out
}

/// Module name of a message.
pub(crate) fn module_name(msg: &Message) -> String {
    snake(&msg.name)
}
