//! `portask topics|queues|exchanges|groups ...`: list, create, delete, describe.

use portask_client::{ClientError, code};

use super::args::Spec;
use super::format::table;
use super::{Conn, Failure, connect};

const TOPICS: Spec = Spec {
    command: "topics",
    usage: "portask topics list | create NAME [--partitions N] [--config K=V] | delete NAME | describe NAME",
    help: "\
Manage topics.

USAGE:
    portask topics list
    portask topics create NAME [--partitions N] [--config KEY=VALUE ...]
    portask topics delete NAME
    portask topics describe NAME

OPTIONS:
    --partitions N         partitions of a new topic (default 1)
    --config KEY=VALUE     a topic config with Kafka's name, e.g. retention.ms=60000 (repeatable)
",
    values: &["--partitions", "--config"],
    switches: &[],
};

const QUEUES: Spec = Spec {
    command: "queues",
    usage: "portask queues list | declare NAME [--durable] | delete NAME",
    help: "\
Manage queues.

USAGE:
    portask queues list [--vhost V]
    portask queues declare NAME [--durable] [--auto-delete] [--vhost V]
    portask queues delete NAME [--if-unused] [--if-empty] [--vhost V]

OPTIONS:
    --vhost V              virtual host (default /; `list` without it shows every vhost)
    --durable              the queue survives a restart
    --auto-delete          delete the queue when its last consumer goes
    --if-unused            delete only if the queue has no consumers
    --if-empty             delete only if the queue has no messages
",
    values: &["--vhost"],
    switches: &["--durable", "--auto-delete", "--if-unused", "--if-empty"],
};

const EXCHANGES: Spec = Spec {
    command: "exchanges",
    usage: "portask exchanges list | declare NAME --type T | delete NAME | bind SOURCE DEST",
    help: "\
Manage exchanges and bindings.

USAGE:
    portask exchanges list [--vhost V]
    portask exchanges declare NAME --type direct|fanout|topic|headers [--durable] [--vhost V]
    portask exchanges delete NAME [--vhost V]
    portask exchanges bind SOURCE DESTINATION [--routing-key R] [--vhost V]
    portask exchanges unbind SOURCE DESTINATION [--routing-key R] [--vhost V]

OPTIONS:
    --vhost V              virtual host (default /; `list` without it shows every vhost)
    --type T               exchange type: direct, fanout, topic or headers
    --durable              the exchange survives a restart
    --routing-key R        binding key (default empty); DESTINATION is a queue, exchange or topic
",
    values: &["--vhost", "--type", "--routing-key"],
    switches: &["--durable"],
};

const GROUPS: Spec = Spec {
    command: "groups",
    usage: "portask groups list | describe GROUP | delete GROUP",
    help: "\
Inspect and delete consumer groups.

USAGE:
    portask groups list
    portask groups describe GROUP
    portask groups delete GROUP
",
    values: &[],
    switches: &[],
};

pub(crate) fn run(what: &str, args: &[String]) -> Result<(), Failure> {
    let spec = match what {
        "topics" => &TOPICS,
        "queues" => &QUEUES,
        "exchanges" => &EXCHANGES,
        _ => &GROUPS,
    };
    let p = spec.parse(args)?;
    let action = match p.positionals.first() {
        Some(a) => a.as_str(),
        None => {
            return Err(p.usage_error(format!(
                "'portask {what}' needs an action: {}",
                actions(what).join(", ")
            )));
        }
    };
    if !actions(what).contains(&action) {
        return Err(p.usage_error(format!(
            "unknown action '{action}' for 'portask {what}' (expected one of: {})",
            actions(what).join(", ")
        )));
    }
    let arity = match action {
        "list" | "bindings" => 1,
        "bind" | "unbind" => 3,
        _ => 2,
    };
    p.at_most(arity)?;
    let name = match arity {
        1 => String::new(),
        _ => p
            .positional(1, if what == "groups" { "GROUP" } else { "NAME" })?
            .to_owned(),
    };
    let mut kind = None;
    if what == "exchanges" && action == "declare" {
        kind = Some(match p.value("--type") {
            Some(t @ ("direct" | "fanout" | "topic" | "headers")) => t.to_owned(),
            Some(t) => {
                return Err(p.usage_error(format!(
                    "invalid value '{t}' for '--type': expected direct, fanout, topic or headers"
                )));
            }
            None => return Err(p.usage_error("'exchanges declare' needs '--type T'")),
        });
    }
    let partitions: i32 = p.number("--partitions", "a positive integer")?.unwrap_or(1);
    if partitions < 1 {
        return Err(p.usage_error("'--partitions' must be at least 1"));
    }
    let mut configs = Vec::new();
    for c in p.values("--config") {
        let Some((k, v)) = c.split_once('=') else {
            return Err(p.usage_error(format!(
                "invalid value '{c}' for '--config': expected KEY=VALUE"
            )));
        };
        configs.push((k.to_owned(), v.to_owned()));
    }
    let mut conn = connect(&p)?;
    let vhost = p.value("--vhost").unwrap_or("/");
    let r = match (what, action) {
        ("topics", "list") => topics_list(&mut conn),
        ("topics", "create") => conn
            .client
            .create_topic(&name, partitions, configs)
            .map(|()| println!("created topic {name} with {partitions} partition(s)")),
        ("topics", "delete") => conn
            .client
            .delete_topic(&name)
            .map(|()| println!("deleted topic {name}")),
        ("topics", "describe") => topics_describe(&mut conn, &name),
        ("queues", "list") => queues_list(&mut conn, p.value("--vhost")),
        ("queues", "declare") => conn
            .client
            .declare_queue(
                vhost,
                &name,
                p.switch("--durable"),
                p.switch("--auto-delete"),
                Vec::new(),
            )
            .map(|q| {
                println!(
                    "declared queue {} in vhost {vhost} ({} messages, {} consumers)",
                    q.name, q.message_count, q.consumer_count
                )
            }),
        ("queues", "delete") => conn
            .client
            .delete_queue(
                vhost,
                &name,
                p.switch("--if-unused"),
                p.switch("--if-empty"),
            )
            .map(|()| println!("deleted queue {name} in vhost {vhost}")),
        ("exchanges", "list") => exchanges_list(&mut conn, p.value("--vhost")),
        ("exchanges", "bindings") => bindings_list(&mut conn, p.value("--vhost")),
        ("exchanges", "declare") => {
            let kind = kind.unwrap_or_default();
            conn.client
                .declare_exchange(vhost, &name, &kind, p.switch("--durable"))
                .map(|()| println!("declared {kind} exchange {name} in vhost {vhost}"))
        }
        ("exchanges", "delete") => conn
            .client
            .delete_exchange(vhost, &name)
            .map(|()| println!("deleted exchange {name} in vhost {vhost}")),
        ("exchanges", "bind" | "unbind") => {
            let dest = p.positional(2, "DESTINATION")?.to_owned();
            let key = p.value("--routing-key").unwrap_or("");
            let r = if action == "bind" {
                conn.client.bind(vhost, &dest, &name, key)
            } else {
                conn.client.unbind(vhost, &dest, &name, key)
            };
            r.map(|()| println!("{action} {dest} to exchange {name} with routing key {key:?}"))
        }
        ("groups", "list") => groups_list(&mut conn),
        ("groups", "describe") => groups_describe(&mut conn, &name),
        ("groups", "delete") => conn
            .client
            .delete_group(&name)
            .map(|()| println!("deleted group {name}")),
        _ => unreachable!("actions were checked above"),
    };
    r.map_err(|e| conn.fail(e))
}

fn actions(what: &str) -> &'static [&'static str] {
    match what {
        "topics" => &["list", "create", "delete", "describe"],
        "queues" => &["list", "declare", "delete"],
        "exchanges" => &["list", "declare", "delete", "bind", "unbind", "bindings"],
        _ => &["list", "describe", "delete"],
    }
}

fn topics_list(conn: &mut Conn) -> Result<(), ClientError> {
    let mut topics = conn.client.list_topics()?;
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.to_string(),
                t.high_watermarks.iter().sum::<i64>().to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["TOPIC", "PARTITIONS", "MESSAGES"], &rows));
    Ok(())
}

fn topics_describe(conn: &mut Conn, name: &str) -> Result<(), ClientError> {
    let topics = conn.client.list_topics()?;
    let Some(t) = topics.into_iter().find(|t| t.name == name) else {
        return Err(ClientError::Broker {
            code: code::UNKNOWN_TOPIC,
            message: format!("no topic named {name}"),
        });
    };
    println!("topic {}: {} partition(s)", t.name, t.partitions);
    let rows: Vec<Vec<String>> = (0..t.partitions)
        .map(|p| {
            let hw = t.high_watermarks.get(p as usize);
            vec![p.to_string(), hw.map_or("-".into(), i64::to_string)]
        })
        .collect();
    print!("{}", table(&["PARTITION", "HIGH-WATERMARK"], &rows));
    if !t.configs.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = t
            .configs
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        print!("{}", table(&["CONFIG", "VALUE"], &rows));
    }
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn queues_list(conn: &mut Conn, vhost: Option<&str>) -> Result<(), ClientError> {
    let mut queues = conn.client.list_queues(vhost)?;
    queues.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            vec![
                q.vhost.clone(),
                q.name.clone(),
                yes_no(q.durable),
                yes_no(q.auto_delete),
                q.messages.to_string(),
                q.consumers.to_string(),
            ]
        })
        .collect();
    let headers = [
        "VHOST",
        "QUEUE",
        "DURABLE",
        "AUTO-DELETE",
        "MESSAGES",
        "CONSUMERS",
    ];
    print!("{}", table(&headers, &rows));
    Ok(())
}

fn exchanges_list(conn: &mut Conn, vhost: Option<&str>) -> Result<(), ClientError> {
    let mut exchanges = conn.client.list_exchanges(vhost)?;
    exchanges.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
    let rows: Vec<Vec<String>> = exchanges
        .iter()
        .map(|x| {
            let name = if x.name.is_empty() {
                "(default)".to_owned()
            } else {
                x.name.clone()
            };
            vec![x.vhost.clone(), name, x.kind.clone(), yes_no(x.durable)]
        })
        .collect();
    print!(
        "{}",
        table(&["VHOST", "EXCHANGE", "TYPE", "DURABLE"], &rows)
    );
    Ok(())
}

fn bindings_list(conn: &mut Conn, vhost: Option<&str>) -> Result<(), ClientError> {
    let bindings = conn.client.list_bindings(vhost)?;
    let rows: Vec<Vec<String>> = bindings
        .into_iter()
        .map(|b| {
            vec![
                b.vhost,
                b.source,
                b.destination_kind,
                b.destination,
                b.routing_key,
            ]
        })
        .collect();
    let header = ["VHOST", "EXCHANGE", "TO", "DESTINATION", "ROUTING KEY"];
    print!("{}", table(&header, &rows));
    Ok(())
}

fn groups_list(conn: &mut Conn) -> Result<(), ClientError> {
    let mut groups = conn.client.list_groups()?;
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| vec![g.group.clone(), g.state.clone(), g.generation.to_string()])
        .collect();
    print!("{}", table(&["GROUP", "STATE", "GENERATION"], &rows));
    Ok(())
}

fn groups_describe(conn: &mut Conn, name: &str) -> Result<(), ClientError> {
    let groups = conn.client.describe_groups(&[name.to_owned()])?;
    let Some(g) = groups.into_iter().find(|g| g.group == name) else {
        return Err(ClientError::Broker {
            code: code::UNKNOWN_GROUP,
            message: format!("no group named {name}"),
        });
    };
    println!(
        "group {}: {}, generation {}, {} member(s)",
        g.group,
        g.state,
        g.generation,
        g.members.len()
    );
    let mut rows = Vec::new();
    for m in &g.members {
        if m.assignments.is_empty() {
            rows.push(vec![
                m.member_id.clone(),
                m.client.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for a in &m.assignments {
            rows.push(vec![
                m.member_id.clone(),
                m.client.clone(),
                a.topic.clone(),
                a.partition.to_string(),
                a.offset.to_string(),
            ]);
        }
    }
    if !rows.is_empty() {
        print!(
            "{}",
            table(
                &["MEMBER", "CLIENT", "TOPIC", "PARTITION", "COMMITTED"],
                &rows
            )
        );
    }
    Ok(())
}
