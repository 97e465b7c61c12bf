//! Reads a JSON array of cases on stdin, answers each with the `emv` crate and
//! writes a JSON array of results (`{"ok": …}` or `{"err": "…"}`) to stdout.
//! tests/interop/emv_interop.py drives it against pyemv.
//!
//! Operations (hex strings throughout):
//! - `icc_mk` {option: "a"|"b", imk, pan, psn} → key
//! - `common_sk` {mk, r}, `visa_sk` {mk, atc} → key
//! - `mac` {key, data} → 8-byte retail MAC
//! - `pin_block` {format: "vis"|"iso2", mk_ac?, pin} → block
//! - `encipher` {key, data, mode: "visa"|"mastercard"} → ciphertext
//! - `script` {cvn, ac, smi, smc, pan, psn, atc, arqc, command: "change_pin"|
//!   "unblock_pin", pin?, script_id} → {apdu, template}
//! - `parse_icc` {data} → {arqc, atc, results: [[result, sequence, id]]}
//! - `parse_tlv` {data} → tree; `encode_tlv` {tree} → hex, where a tree is a list
//!   of {tag, value} and {tag, children}.

use std::io::Read;

use emv::kd::{common_session_key, icc_master_key_a, icc_master_key_b, visa_session_key};
use emv::sm::Encipherment;
use emv::tlv::{Tag, Tlv};
use emv::{Cvn, IssuerMasterKeys, Pan, Pin, Psn, ScriptContext, ScriptOutcome, TdesKey};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn unhex(s: &str) -> Res<Vec<u8>> {
    if s.len() % 2 != 0 {
        return Err("odd hex".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or("hex")?, 16).map_err(|e| e.to_string()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn field<'a>(case: &'a Value, name: &str) -> Res<&'a str> {
    case.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {name}"))
}

fn bytes(case: &Value, name: &str) -> Res<Vec<u8>> {
    unhex(field(case, name)?)
}

fn array<const N: usize>(case: &Value, name: &str) -> Res<[u8; N]> {
    bytes(case, name)?
        .try_into()
        .map_err(|_| format!("{name}: not {N} bytes"))
}

fn key(case: &Value, name: &str) -> Res<TdesKey> {
    TdesKey::from_slice(&bytes(case, name)?).map_err(|e| e.to_string())
}

fn pan(case: &Value) -> Res<Pan> {
    Pan::new(field(case, "pan")?).map_err(|e| e.to_string())
}

fn psn(case: &Value) -> Res<Psn> {
    Psn::parse(field(case, "psn")?).map_err(|e| e.to_string())
}

fn pin(case: &Value) -> Res<Pin> {
    Pin::new(field(case, "pin")?).map_err(|e| e.to_string())
}

fn tree_to_json(items: &[Tlv<'_>]) -> Value {
    items
        .iter()
        .map(|item| match item {
            Tlv::Primitive { tag, value } => json!({"tag": tag.to_string(), "value": hex(value)}),
            Tlv::Constructed { tag, children } => {
                json!({"tag": tag.to_string(), "children": tree_to_json(children)})
            }
        })
        .collect()
}

/// An owned tree read from JSON, borrowed as `Tlv` to encode.
enum Node {
    P(Tag, Vec<u8>),
    C(Tag, Vec<Node>),
}

fn json_to_nodes(tree: &Value) -> Res<Vec<Node>> {
    let list = tree.as_array().ok_or("tree: not a list")?;
    list.iter()
        .map(|item| {
            let raw = u32::from_str_radix(field(item, "tag")?, 16).map_err(|e| e.to_string())?;
            let tag = Tag::new(raw).map_err(|e| e.to_string())?;
            match item.get("children") {
                Some(children) => Ok(Node::C(tag, json_to_nodes(children)?)),
                None => Ok(Node::P(tag, bytes(item, "value")?)),
            }
        })
        .collect()
}

fn as_tlv(nodes: &[Node]) -> Vec<Tlv<'_>> {
    nodes
        .iter()
        .map(|n| match n {
            Node::P(tag, value) => Tlv::Primitive { tag: *tag, value },
            Node::C(tag, children) => Tlv::Constructed {
                tag: *tag,
                children: as_tlv(children),
            },
        })
        .collect()
}

fn script(case: &Value) -> Res<Value> {
    let keys = IssuerMasterKeys {
        ac: key(case, "ac")?,
        smi: key(case, "smi")?,
        smc: key(case, "smc")?,
    };
    let pan = pan(case)?;
    let ctx = ScriptContext {
        cvn: Cvn::parse(field(case, "cvn")?).map_err(|e| e.to_string())?,
        keys: &keys,
        pan: &pan,
        psn: psn(case)?,
        atc: array(case, "atc")?,
        arqc: array(case, "arqc")?,
    };
    let command = match field(case, "command")? {
        "change_pin" => ctx.change_pin(&pin(case)?),
        "unblock_pin" => ctx.unblock_pin(),
        other => return Err(format!("unknown command {other}")),
    };
    let template = emv::issuer_script(array(case, "script_id")?, &command);
    Ok(json!({"apdu": hex(command.as_bytes()), "template": hex(template.as_bytes())}))
}

fn run(case: &Value) -> Res<Value> {
    Ok(match field(case, "op")? {
        "icc_mk" => {
            let (imk, pan, psn) = (key(case, "imk")?, pan(case)?, psn(case)?);
            let mk = match field(case, "option")? {
                "a" => icc_master_key_a(&imk, &pan, psn),
                "b" => icc_master_key_b(&imk, &pan, psn),
                other => return Err(format!("unknown option {other}")),
            };
            json!(hex(mk.expose()))
        }
        "common_sk" => json!(hex(common_session_key(
            &key(case, "mk")?,
            &array(case, "r")?
        )
        .expose())),
        "visa_sk" => json!(hex(visa_session_key(
            &key(case, "mk")?,
            &array(case, "atc")?
        )
        .expose())),
        "mac" => json!(hex(&emv::mac::retail_mac(
            &key(case, "key")?,
            &bytes(case, "data")?
        ))),
        "pin_block" => {
            let block = match field(case, "format")? {
                "vis" => emv::pin::vis_pin_block(&key(case, "mk_ac")?, &pin(case)?),
                "iso2" => emv::pin::iso9564_format2(&pin(case)?),
                other => return Err(format!("unknown format {other}")),
            };
            json!(hex(block.expose()))
        }
        "encipher" => {
            let mode = match field(case, "mode")? {
                "visa" => Encipherment::Visa,
                "mastercard" => Encipherment::Mastercard,
                other => return Err(format!("unknown mode {other}")),
            };
            let ct =
                emv::sm::encipher_command_data(&key(case, "key")?, &bytes(case, "data")?, mode)
                    .map_err(|e| e.to_string())?;
            json!(hex(&ct))
        }
        "script" => script(case)?,
        "parse_icc" => {
            let icc = emv::parse_icc_data(&bytes(case, "data")?).map_err(|e| e.to_string())?;
            let results: Vec<Value> = icc
                .script_results
                .iter()
                .map(|r| {
                    let outcome = match r.outcome {
                        ScriptOutcome::NotPerformed => 0,
                        ScriptOutcome::Failed => 1,
                        ScriptOutcome::Successful => 2,
                    };
                    json!([outcome, r.sequence, hex(&r.script_id)])
                })
                .collect();
            json!({"arqc": hex(&icc.arqc), "atc": hex(&icc.atc), "results": results})
        }
        "parse_tlv" => {
            let data = bytes(case, "data")?;
            tree_to_json(&emv::tlv::parse(&data).map_err(|e| e.to_string())?)
        }
        "encode_tlv" => {
            let nodes = json_to_nodes(case.get("tree").ok_or("missing tree")?)?;
            json!(hex(
                &emv::tlv::encode(&as_tlv(&nodes)).map_err(|e| e.to_string())?
            ))
        }
        other => return Err(format!("unknown op {other}")),
    })
}

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("emv_cases: reading stdin: {e}");
        std::process::exit(2);
    }
    let cases: Vec<Value> = match serde_json::from_str(&input) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("emv_cases: stdin is not a JSON array: {e}");
            std::process::exit(2);
        }
    };
    let results: Vec<Value> = cases
        .iter()
        .map(|case| match run(case) {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"err": e}),
        })
        .collect();
    println!("{}", Value::Array(results));
}
