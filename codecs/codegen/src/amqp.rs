//! The `amqp` mode: generates `portask-amqp`'s `generated.rs` from RabbitMQ's AMQP 0-9-1 JSON
//! (classes, methods, arguments, domains, constants, content properties) and the extended
//! 0-9-1 XML (which side sends each method and which methods answer it).
//!
//! ```text
//! cargo run -p portask-codegen -- amqp ../shared/specs/amqp/amqp-rabbitmq-0.9.1.json \
//!     ../shared/specs/amqp/amqp0-9-1.stripped.extended.xml codecs/amqp/src/generated.rs \
//!     proptests/tests/amqp_methods/strategies.rs
//! cargo fmt -p portask-amqp -p portask-proptests
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::amqp_emit;

/// A wire type of an argument or property, after resolving its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bit,
    Octet,
    Short,
    Long,
    LongLong,
    ShortStr,
    LongStr,
    Table,
    Timestamp,
}

impl Ty {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "bit" => Self::Bit,
            "octet" => Self::Octet,
            "short" => Self::Short,
            "long" => Self::Long,
            "longlong" => Self::LongLong,
            "shortstr" => Self::ShortStr,
            "longstr" => Self::LongStr,
            "table" => Self::Table,
            "timestamp" => Self::Timestamp,
            _ => return Err(format!("unknown AMQP type {s:?}")),
        })
    }
}

/// One method argument or content property.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) default: Option<Value>,
}

/// One method, with the facts the XML adds.
#[derive(Debug, Clone)]
pub(crate) struct Method {
    pub(crate) class: String,
    pub(crate) class_id: u16,
    pub(crate) name: String,
    pub(crate) id: u16,
    pub(crate) args: Vec<Arg>,
    pub(crate) synchronous: bool,
    pub(crate) content: bool,
    pub(crate) by_client: bool,
    pub(crate) by_server: bool,
    pub(crate) responses: Vec<u16>,
}

/// Everything the generated file needs.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) constants: Vec<(String, u64, Option<String>)>,
    pub(crate) classes: Vec<(String, u16)>,
    pub(crate) methods: Vec<Method>,
    pub(crate) properties: Vec<Arg>,
}

/// What the XML says about one method: (chassis names, response method names).
type XmlFacts = BTreeMap<(String, String), (Vec<String>, Vec<String>)>;

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Scans the XML line by line: every element the generator needs sits on its own line.
fn parse_xml(text: &str) -> XmlFacts {
    let mut facts = XmlFacts::new();
    let mut class = String::new();
    let mut method: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("<class ") {
            class = attr(line, "name").unwrap_or_default().to_string();
            method = None;
        } else if line.starts_with("<method ") {
            let name = attr(line, "name").unwrap_or_default().to_string();
            facts.entry((class.clone(), name.clone())).or_default();
            method = Some(name);
        } else if line.starts_with("</method") {
            method = None;
        } else if let Some(m) = &method {
            let entry = facts.entry((class.clone(), m.clone())).or_default();
            if line.starts_with("<chassis ") {
                entry.0.extend(attr(line, "name").map(str::to_string));
            } else if line.starts_with("<response ") {
                entry.1.extend(attr(line, "name").map(str::to_string));
            }
        }
    }
    facts
}

fn num(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("{what}: not a number"))
}

fn parse_args(v: &Value, domains: &BTreeMap<String, Ty>) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    for a in v.as_array().into_iter().flatten() {
        let name = a["name"]
            .as_str()
            .ok_or("argument without name")?
            .to_string();
        let ty = match (a["type"].as_str(), a["domain"].as_str()) {
            (Some(t), _) => Ty::parse(t)?,
            (None, Some(d)) => *domains
                .get(d)
                .ok_or_else(|| format!("unknown domain {d}"))?,
            _ => return Err(format!("{name}: no type or domain")),
        };
        let default = a.get("default-value").cloned();
        args.push(Arg { name, ty, default });
    }
    Ok(args)
}

/// The 0-9-1 XML dropped the `access` class that RabbitMQ still decodes: its request is sent
/// by the client and answered by the server's `-ok`, the shape of every synchronous pair.
fn xml_fallback(name: &str, synchronous: bool) -> (Vec<String>, Vec<String>) {
    if name.ends_with("-ok") {
        (vec!["client".into()], vec![])
    } else if synchronous {
        (vec!["server".into()], vec![format!("{name}-ok")])
    } else {
        (vec!["server".into()], vec![])
    }
}

/// The XML of RabbitMQ's extended spec marks `connection.update-secret` as sent to the
/// client, but RabbitMQ (and every client) sends it from the client to the server, and
/// answers with `update-secret-ok`. The generator corrects that one method.
fn chassis_fix(class: &str, method: &str, by_client: bool, by_server: bool) -> (bool, bool) {
    match (class, method) {
        ("connection", "update-secret") => (true, false),
        ("connection", "update-secret-ok") => (false, true),
        _ => (by_client, by_server),
    }
}

fn parse_method(
    class: &str,
    class_id: u16,
    m: &Value,
    domains: &BTreeMap<String, Ty>,
    xml: &XmlFacts,
) -> Result<(Method, Vec<String>), String> {
    let name = m["name"].as_str().ok_or("method without name")?.to_string();
    let id = num(&m["id"], &name)? as u16;
    let fallback = xml_fallback(&name, m["synchronous"].as_bool().unwrap_or(false));
    let (chassis, responses) = xml
        .get(&(class.to_string(), name.clone()))
        .unwrap_or(&fallback);
    // `<chassis name="server">` means the server implements (receives) the method.
    let by_client = chassis.iter().any(|c| c == "server");
    let by_server = chassis.iter().any(|c| c == "client");
    let (by_client, by_server) = chassis_fix(class, &name, by_client, by_server);
    let method = Method {
        class: class.to_string(),
        class_id,
        args: parse_args(&m["arguments"], domains)?,
        synchronous: m["synchronous"].as_bool().unwrap_or(false),
        content: m["content"].as_bool().unwrap_or(false),
        name,
        id,
        by_client,
        by_server,
        responses: Vec::new(),
    };
    Ok((method, responses.clone()))
}

pub(crate) fn parse(json: &str, xml: &str) -> Result<Spec, String> {
    let root: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let xml = parse_xml(xml);
    let mut domains = BTreeMap::new();
    for d in root["domains"].as_array().ok_or("no domains")? {
        let (Some(name), Some(ty)) = (d[0].as_str(), d[1].as_str()) else {
            return Err("bad domain".into());
        };
        domains.insert(name.to_string(), Ty::parse(ty)?);
    }
    let mut constants = Vec::new();
    for c in root["constants"].as_array().ok_or("no constants")? {
        let name = c["name"]
            .as_str()
            .ok_or("constant without name")?
            .to_string();
        let class = c["class"].as_str().map(str::to_string);
        constants.push((name.clone(), num(&c["value"], &name)?, class));
    }
    let mut spec = Spec {
        constants,
        classes: Vec::new(),
        methods: Vec::new(),
        properties: vec![],
    };
    let mut responses = Vec::new();
    for c in root["classes"].as_array().ok_or("no classes")? {
        let class = c["name"].as_str().ok_or("class without name")?;
        let class_id = num(&c["id"], class)? as u16;
        spec.classes.push((class.to_string(), class_id));
        if class == "basic" {
            spec.properties = parse_args(&c["properties"], &domains)?;
        }
        for m in c["methods"].as_array().ok_or("class without methods")? {
            let (method, resp) = parse_method(class, class_id, m, &domains, &xml)?;
            spec.methods.push(method);
            responses.push(resp);
        }
    }
    for (i, names) in responses.into_iter().enumerate() {
        for r in names {
            let class = spec.methods[i].class.clone();
            let target = spec
                .methods
                .iter()
                .find(|m| m.class == class && m.name == r);
            let id = target
                .ok_or_else(|| format!("unknown response {class}.{r}"))?
                .id;
            spec.methods[i].responses.push(id);
        }
        // The XML leaves out the answer of `basic.recover`; a synchronous method is answered
        // by its `-ok`.
        let m = &spec.methods[i];
        let ok = format!("{}-ok", m.name);
        if m.synchronous && m.responses.is_empty() {
            let ok = spec
                .methods
                .iter()
                .find(|o| o.class == m.class && o.name == ok);
            if let Some(id) = ok.map(|o| o.id) {
                spec.methods[i].responses.push(id);
            }
        }
    }
    Ok(spec)
}

/// `basic.get-ok` → `BasicGetOk`.
pub(crate) fn pascal(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        for w in p.split('-') {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                s.extend(f.to_uppercase());
                s.push_str(c.as_str());
            }
        }
    }
    s
}

/// `routing-key` → `routing_key`; `type` → `r#type`.
pub(crate) fn field_ident(name: &str) -> String {
    let s = name.replace('-', "_");
    if s == "type" { format!("r#{s}") } else { s }
}

/// `connection.start-ok` → `connection_start_ok`.
pub(crate) fn snake(m: &Method) -> String {
    format!("{}_{}", m.class, m.name).replace('-', "_")
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let [json, xml, out, rest @ ..] = args else {
        return Err(
            "usage: portask-codegen amqp <spec json> <spec xml> <generated.rs> [strategies.rs]"
                .into(),
        );
    };
    let read = |p: &String| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let spec = parse(&read(json)?, &read(xml)?)?;
    std::fs::write(out, amqp_emit::emit(&spec)).map_err(|e| format!("{out}: {e}"))?;
    if let [strategies] = rest {
        let text = amqp_emit::emit_strategies(&spec);
        std::fs::write(strategies, text).map_err(|e| format!("{strategies}: {e}"))?;
    }
    let mut summary = String::new();
    write!(
        summary,
        "generated {} AMQP methods into {out}",
        spec.methods.len()
    )
    .unwrap();
    eprintln!("{summary}");
    Ok(())
}
