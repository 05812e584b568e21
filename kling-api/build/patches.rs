//! The patches `main.rs` applies to the parsed documents, never to the files.
//!
//! Each patch is named, says why it exists, targets what it means by JSON
//! pointer, and fails the build when that target is gone: a new version of a
//! document then stops here with the patch's name instead of generating
//! something silently different. `spec/README.md` lists them.
//!
//! Two kinds:
//! - **contract** patches fix what a vendored document gets wrong about the
//!   service (each is a known defect). The result is the contract: the crate
//!   exposes it (`kling_api::spec`) and the conformance tests validate against it.
//! - **generation** patches only shape the generated Rust: open enums, pinned
//!   names, what progenitor cannot generate.

use serde_json::{json, Map, Value};

/// One operation, pinned: the generated method and type names come from here,
/// not from the document's `operationId`, so a rename in a new spec version
/// shows in the surface snapshot (which prints the document's id) and nothing
/// else changes.
pub struct Pinned {
    pub doc: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    /// The operationId progenitor is given; the method is its snake case.
    pub id: &'static str,
    /// The component name given to the JSON request body's schema.
    pub body: Option<&'static str>,
    /// The component name given to the 200 answer's schema.
    pub answer: &'static str,
    /// Schemas inside those two that the SDK names, with their pointers
    /// relative to the body's (`body…`) or the answer's (`answer…`) schema.
    pub nested: &'static [(&'static str, &'static str)],
}

pub const PINNED: &[Pinned] = &[
    Pinned {
        doc: "ai-avatar-v1-pro.json",
        method: "post",
        path: "/api/v1/jobs/createTask",
        id: "kling-ai-avatar-v1-pro",
        body: Some("KlingAiAvatarV1ProBody"),
        answer: "KlingAiAvatarV1ProResponse",
        nested: &[
            ("body/properties/input", "KlingAiAvatarV1ProBodyInput"),
            (
                "answer/allOf/1/properties/data",
                "KlingAiAvatarV1ProResponseData",
            ),
        ],
    },
    Pinned {
        doc: "get-task-details.json",
        method: "get",
        path: "/api/v1/jobs/recordInfo",
        id: "get-task-details",
        body: None,
        answer: "GetTaskDetailsResponse",
        nested: &[],
    },
    Pinned {
        doc: "common.json",
        method: "get",
        path: "/api/v1/chat/credit",
        id: "get-account-credits",
        body: None,
        answer: "GetAccountCreditsResponse",
        nested: &[],
    },
    Pinned {
        doc: "common.json",
        method: "post",
        path: "/api/v1/common/download-url",
        id: "get-download-url",
        body: Some("GetDownloadUrlBody"),
        answer: "GetDownloadUrlResponse",
        nested: &[],
    },
    Pinned {
        doc: "file-upload.json",
        method: "post",
        path: "/api/file-base64-upload",
        id: "upload-file-base64",
        body: Some("UploadFileBase64Body"),
        answer: "UploadFileBase64Response",
        nested: &[],
    },
    Pinned {
        doc: "file-upload.json",
        method: "post",
        path: "/api/file-url-upload",
        id: "upload-file-url",
        body: Some("UploadFileUrlBody"),
        answer: "UploadFileUrlResponse",
        nested: &[],
    },
];

/// The multipart stream upload: in the contract, not generated.
const STREAM_UPLOAD: &str = "/paths/~1api~1file-stream-upload/post";

/// A pinned operation as the document names it, for the surface summary.
pub struct Seen {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    /// The document's own operationId.
    pub spec_id: String,
}

/// One patch: its name (for messages and `spec/README.md`) and what it does.
/// `apply` returns how many places it changed; zero fails the build.
struct Patch<'a> {
    name: &'static str,
    apply: Apply<'a>,
}

type Apply<'a> = Box<dyn Fn(&mut Value) -> Result<usize, String> + 'a>;

fn patch<'a>(
    name: &'static str,
    apply: impl Fn(&mut Value) -> Result<usize, String> + 'a,
) -> Patch<'a> {
    Patch {
        name,
        apply: Box::new(apply),
    }
}

fn run(doc_name: &str, doc: &mut Value, patches: &[Patch]) -> Result<(), String> {
    for patch in patches {
        let changed = (patch.apply)(doc).map_err(|e| {
            format!(
                "spec/{doc_name}: patch `{}`: {e} (kling-api/build/patches.rs)",
                patch.name
            )
        })?;
        if changed == 0 {
            return Err(format!(
                "spec/{doc_name}: patch `{}` matched nothing: the document changed; \
                 review the patch in kling-api/build/patches.rs and spec/README.md",
                patch.name
            ));
        }
    }
    Ok(())
}

/// The value at `pointer`, or an error naming it.
fn at<'a>(doc: &'a mut Value, pointer: &str) -> Result<&'a mut Value, String> {
    doc.pointer_mut(pointer)
        .ok_or_else(|| format!("nothing at {pointer}"))
}

fn object<'a>(doc: &'a mut Value, pointer: &str) -> Result<&'a mut Map<String, Value>, String> {
    at(doc, pointer)?
        .as_object_mut()
        .ok_or_else(|| format!("{pointer} is not an object"))
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn operation_pointer(method: &str, path: &str) -> String {
    format!("/paths/{}/{method}", escape(path))
}

// ---------------------------------------------------------------------------
// Contract patches: known defects of the vendored document.
// ---------------------------------------------------------------------------

/// The contract patches of one document.
pub fn contract(doc_name: &str, doc: &mut Value) -> Result<(), String> {
    let patches = match doc_name {
        "ai-avatar-v1-pro.json" => vec![
            patch("nullable_error_data", nullable_error_data),
            patch("document_rate_limit", document_rate_limit),
            patch("drop_placeholder_email", drop_placeholder_email),
        ],
        _ => vec![],
    };
    run(doc_name, doc, &patches)
}

const CREATE_TASK_DATA: &str = "/paths/~1api~1v1~1jobs~1createTask/post/responses/200/content/application~1json/schema/allOf/1/properties/data";

/// Every error envelope the service sends has `data: null`, and createTask's
/// `data` is `{type: object}`, not nullable: as vendored, no error answer
/// conforms.
fn nullable_error_data(doc: &mut Value) -> Result<usize, String> {
    let data = object(doc, CREATE_TASK_DATA)?;
    if data.get("type").and_then(Value::as_str) != Some("object") {
        return Err(format!("{CREATE_TASK_DATA} is no longer `type: object`"));
    }
    data.insert("nullable".into(), json!(true));
    Ok(1)
}

/// The service answers a burst over 20 creates in 10 s with HTTP 429 (and
/// with the envelope's `code: 429` over HTTP 200); the vendored document lists
/// only 200 and 500.
fn document_rate_limit(doc: &mut Value) -> Result<usize, String> {
    let responses = object(doc, "/paths/~1api~1v1~1jobs~1createTask/post/responses")?;
    if responses.contains_key("429") {
        return Err("createTask documents 429 now: drop this patch".into());
    }
    responses.insert(
        "429".into(),
        json!({
            "description": "Rate limited: more than 20 createTask requests in 10 seconds. The body, when there is one, is the envelope with `code: 429`; a `Retry-After` header may say when to send again.",
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "description": "Seconds to wait"}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiResponse"}}}
        }),
    );
    Ok(1)
}

/// The page's contact e-mail is Cloudflare's obfuscation placeholder
/// (`[email protected]`), not an address: strict validators reject it.
fn drop_placeholder_email(doc: &mut Value) -> Result<usize, String> {
    let contact = object(doc, "/info/contact")?;
    match contact.get("email").and_then(Value::as_str) {
        Some(email) if email.contains("protected") => {
            contact.remove("email");
            Ok(1)
        }
        _ => Ok(0),
    }
}

// ---------------------------------------------------------------------------
// Generation patches.
// ---------------------------------------------------------------------------

/// The generation patches of one document, after its contract patches.
/// Returns the pinned operations it names, with the document's own ids.
pub fn generation(doc_name: &str, doc: &mut Value) -> Result<Vec<Seen>, String> {
    let envelope = match doc_name {
        "ai-avatar-v1-pro.json" => "/components/schemas/ApiResponse",
        "file-upload.json" => "/components/schemas/UploadEnvelope",
        _ => "/components/schemas/Envelope",
    };
    let code = format!("{envelope}/properties/code");
    let mut patches = vec![
        patch("open_code_enums", |d| drop_enum(d, &code)),
        patch("accept_message_alias", |d| {
            accept_message_alias(d, envelope)
        }),
    ];
    match doc_name {
        "ai-avatar-v1-pro.json" => patches.push(patch("open_model_ids", open_model_ids)),
        "get-task-details.json" => {
            patches.push(patch("open_state_enums", |d| {
                drop_enum(d, "/components/schemas/TaskRecord/properties/state")
            }));
            patches.push(patch("plain_fail_code_branches", plain_fail_code_branches));
            patches.push(patch("plain_nullable_records", |d| {
                plain_nullable(d, "/components/schemas/TaskRecord")
            }));
        }
        "file-upload.json" => {
            patches.push(patch(
                "skip_multipart_operations",
                skip_multipart_operations,
            ));
            patches.push(patch("plain_nullable_records", |d| {
                plain_nullable(d, "/components/schemas/UploadedFile")
            }));
        }
        _ => {}
    }
    run(doc_name, doc, &patches)?;
    let seen = pin_operations(doc_name, doc)?;
    run(
        doc_name,
        doc,
        &[patch("keep_error_bodies", keep_error_bodies)],
    )?;
    Ok(seen)
}

/// Removes a closed `enum`. The envelope's `code` is a closed integer enum:
/// typify turns it into a validating newtype, so any code outside the list (433
/// is documented elsewhere; the service may add more) would make the *whole*
/// answer fail to parse and hide its message. Same for the task `state`: a
/// state the service adds later must reach the SDK (which treats it as still
/// running). The known values stay in the description.
fn drop_enum(doc: &mut Value, pointer: &str) -> Result<usize, String> {
    let schema = object(doc, pointer)?;
    Ok(usize::from(schema.remove("enum").is_some()))
}

/// `failCode` is a string, an integer or null. Strictly (OAS 3.0.3), `nullable`
/// only widens a sibling `type`, so the document puts it on the string branch
/// of the `oneOf`; typify reads that as an `Option` inside the variant and
/// renames the variants. The field is optional, so `null` already reads as
/// `None`: the branches go to typify plain.
fn plain_fail_code_branches(doc: &mut Value) -> Result<usize, String> {
    let pointer = "/components/schemas/TaskRecord/properties/failCode/oneOf";
    let branches = at(doc, pointer)?
        .as_array_mut()
        .ok_or_else(|| format!("{pointer} is not an array"))?;
    Ok(branches
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .filter_map(|b| b.remove("nullable"))
        .count())
}

/// The record an answer's `data` holds is null in error answers. Strictly,
/// that needs `nullable` on the record's own schema (beside its `type`);
/// typify would make the component a newtype around an `Option`. Every use is
/// an optional field, so `null` already reads as `None`.
fn plain_nullable(doc: &mut Value, pointer: &str) -> Result<usize, String> {
    Ok(usize::from(
        object(doc, pointer)?.remove("nullable").is_some(),
    ))
}

/// Real traffic names the envelope's message `msg`; some documentation
/// examples spell it `message`. Both are kept, so an error's text is never lost.
fn accept_message_alias(doc: &mut Value, envelope: &str) -> Result<usize, String> {
    let props = object(doc, &format!("{envelope}/properties"))?;
    if !props.contains_key("msg") || props.contains_key("message") {
        return Ok(0);
    }
    props.insert(
        "message".to_owned(),
        json!({
            "type": "string",
            "description": "The response message under the name some documentation examples use; real traffic uses `msg`"
        }),
    );
    Ok(1)
}

/// The vendored `model` enum holds only `kling/ai-avatar-v1-pro`, but the same
/// endpoint serves its siblings and clients send ids the document never named
/// (`kling/v1-avatar-standard`). The generated field is a plain string; the
/// SDK's `Model` knows the ids and lets a caller send any other.
fn open_model_ids(doc: &mut Value) -> Result<usize, String> {
    drop_enum(
        doc,
        "/paths/~1api~1v1~1jobs~1createTask/post/requestBody/content/application~1json/schema/properties/model",
    )
}

/// progenitor 0.15 cannot generate `multipart/form-data` request bodies: one
/// such operation makes generation fail for the whole document. The stream
/// upload stays in the contract; `kling-api-ext` sends it with reqwest's
/// multipart support, streaming from disk.
fn skip_multipart_operations(doc: &mut Value) -> Result<usize, String> {
    if at(
        doc,
        &format!("{STREAM_UPLOAD}/requestBody/content/multipart~1form-data"),
    )
    .is_err()
    {
        return Ok(0);
    }
    let paths = object(doc, "/paths")?;
    Ok(usize::from(
        paths.remove("/api/file-stream-upload").is_some(),
    ))
}

/// Sets each operation's `operationId` to its pinned one and moves its body
/// and 200 answer schemas into `components.schemas` under pinned names, so the
/// generated names do not follow the document's ids.
fn pin_operations(doc_name: &str, doc: &mut Value) -> Result<Vec<Seen>, String> {
    let mut seen = Vec::new();
    for pin in PINNED.iter().filter(|p| p.doc == doc_name) {
        let op = operation_pointer(pin.method, pin.path);
        let operation = object(doc, &op).map_err(|e| {
            format!(
                "pinned operation {} {}: {e}",
                pin.method.to_uppercase(),
                pin.path
            )
        })?;
        let spec_id = operation
            .insert("operationId".into(), json!(pin.id))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let body = format!("{op}/requestBody/content/application~1json/schema");
        let answer = format!("{op}/responses/200/content/application~1json/schema");
        // Inner schemas first, while their pointers still hold.
        for (relative, name) in pin.nested {
            let pointer = if let Some(rest) = relative.strip_prefix("body") {
                format!("{body}{rest}")
            } else if let Some(rest) = relative.strip_prefix("answer") {
                format!("{answer}{rest}")
            } else {
                return Err(format!(
                    "pinned schema {name}: {relative} is not under body or answer"
                ));
            };
            hoist(doc, &pointer, name)?;
        }
        if let Some(name) = pin.body {
            hoist(doc, &body, name)?;
        }
        hoist(doc, &answer, pin.answer)?;
        seen.push(Seen {
            method: pin.method,
            path: pin.path,
            id: pin.id,
            spec_id,
        });
    }
    if seen.is_empty() {
        return Err(format!("spec/{doc_name}: no pinned operation"));
    }
    Ok(seen)
}

fn hoist(doc: &mut Value, pointer: &str, name: &str) -> Result<(), String> {
    let mut schema = std::mem::replace(
        at(doc, pointer)?,
        json!({"$ref": format!("#/components/schemas/{name}")}),
    );
    // A nullable component becomes a newtype around an Option. The places
    // these schemas are used are optional already, so `null` reads as `None`.
    if let Some(schema) = schema.as_object_mut() {
        schema.remove("nullable");
    }
    let schemas = doc
        .as_object_mut()
        .ok_or("the document is not an object")?
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or("components is not an object")?
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or("components.schemas is not an object")?;
    if schemas.insert(name.to_owned(), schema).is_some() {
        return Err(format!("components.schemas.{name} already exists"));
    }
    Ok(())
}

/// A documented response with no content (the specs' 500) makes progenitor
/// return `Error::ErrorResponse(ResponseValue<()>)` and throw the body away,
/// yet that body (a Cloudflare HTML page, or the envelope) tells the caller
/// what happened. Without the non-2xx entries every such status comes back as
/// `Error::UnexpectedResponse` with the body still readable. They stay in the
/// contract.
fn keep_error_bodies(doc: &mut Value) -> Result<usize, String> {
    let mut removed = 0;
    for item in object(doc, "/paths")?.values_mut() {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut())
        {
            if let Some(Value::Object(responses)) = operation.get_mut("responses") {
                let before = responses.len();
                responses.retain(|status, _| status.starts_with('2'));
                removed += before - responses.len();
            }
        }
    }
    Ok(removed)
}

/// `maxLength` limits of the named schemas' string properties: (schema, JSON
/// property name, limit). typify checks them in the newtype it generates but
/// does not tell schemars, so `main.rs` adds them to the derived JSON Schema.
pub fn length_limits(doc: &Value) -> Vec<(String, String, u64)> {
    let mut limits = Vec::new();
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return limits;
    };
    for (name, schema) in schemas {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (prop, s) in props {
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
                limits.push((name.clone(), prop.clone(), max));
            }
        }
    }
    limits
}
