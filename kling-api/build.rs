//! Generates the Apikley clients from the OpenAPI documents in `../spec`.
//!
//! The documents are read as JSON, patched (each patch below is a named function
//! that says why it exists), merged where they share a server, and handed to
//! progenitor. Nothing generated is committed: the output goes to `OUT_DIR`:
//!
//! - `api.rs`: createTask, recordInfo, credit and download-url (one `Client`);
//! - `upload.rs`: the upload API, on its own server (its own `Client`);
//! - `api_mock.rs`, `upload_mock.rs`: progenitor's typed httpmock helpers;
//! - `consts.rs`: the default base URLs, read from the documents' `servers`;
//! - `surface.txt`: a readable summary of the generated public surface, checked
//!   against the committed `kling-api/surface.txt` by a snapshot test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The documents that share the API server, merged into one client. The first
/// one is the seed's contract and provides the merged document's `info`.
const API_SPECS: &[&str] = &[
    "ai-avatar-v1-pro.json",
    "get-task-details.json",
    "common.json",
];
/// The upload API lives on its own server.
const UPLOAD_SPEC: &str = "file-upload.json";

/// Model ids the service documents besides the seed's `kling/ai-avatar-v1-pro`
/// (kie.ai's current catalogue; see the README's model table). The SDK lets the
/// caller choose one, so the generated body type must be able to carry them.
const SIBLING_MODELS: &[&str] = &["kling/ai-avatar-pro", "kling/ai-avatar-standard"];

fn main() {
    if let Err(message) = run() {
        // A build script's `Err` is printed with `Debug`; print it plainly.
        eprintln!("kling-api build.rs: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let spec_dir = manifest_dir.join("..").join("spec");
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", spec_dir.display());

    // The API server: the seed's createTask document plus the hand-written ones.
    let mut api: Option<Value> = None;
    for name in API_SPECS {
        let mut doc = load(&spec_dir, name)?;
        patch_common(&mut doc);
        match api.as_mut() {
            None => api = Some(doc),
            Some(base) => merge(base, doc, name)?,
        }
    }
    let mut api = api.expect("API_SPECS is not empty");
    admit_sibling_models(&mut api)?;
    let api_base = server_url(&api, API_SPECS[0])?;

    let mut upload = load(&spec_dir, UPLOAD_SPEC)?;
    patch_common(&mut upload);
    skip_multipart_operations(&mut upload);
    let upload_base = server_url(&upload, UPLOAD_SPEC)?;

    let api = to_openapi(api, "the merged API documents")?;
    let upload = to_openapi(upload, UPLOAD_SPEC)?;

    let api_code = generate(&api, "crate", "the merged API documents")?;
    let upload_code = generate(&upload, "crate::upload", UPLOAD_SPEC)?;

    let mut surface = String::new();
    surface.push_str(
        "# Generated public surface of kling-api, one line per item.\n\
         # Regenerate with: EXPECTORATE=overwrite cargo test -p kling-api --test surface\n\
         # Reading guide: `op` = a method of Client with its HTTP method, path, arguments and\n\
         # success type; `type` = a generated type; `field` = one of its fields with the JSON name.\n",
    );
    surface.push_str(&describe_surface("kling_api", &api_code.client)?);
    surface.push_str(&describe_surface("kling_api::upload", &upload_code.client)?);

    write(&out_dir.join("api.rs"), &api_code.client)?;
    write(&out_dir.join("api_mock.rs"), &api_code.mock)?;
    write(&out_dir.join("upload.rs"), &upload_code.client)?;
    write(&out_dir.join("upload_mock.rs"), &upload_code.mock)?;
    write(&out_dir.join("surface.txt"), &surface)?;
    write(
        &out_dir.join("consts.rs"),
        &format!(
            "/// Base URL of the API server (createTask, recordInfo, credit, download-url),\n\
             /// from `servers` in `spec/{}`.\n\
             pub const DEFAULT_BASE_URL: &str = {:?};\n\
             /// Base URL of the upload server, from `servers` in `spec/{}`.\n\
             pub const DEFAULT_UPLOAD_BASE_URL: &str = {:?};\n",
            API_SPECS[0], api_base, UPLOAD_SPEC, upload_base
        ),
    )?;
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
}

fn load(dir: &Path, name: &str) -> Result<Value, String> {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read spec/{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("spec/{name} is not valid JSON: {e}"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn to_openapi(doc: Value, what: &str) -> Result<openapiv3::OpenAPI, String> {
    serde_json::from_value(doc).map_err(|e| format!("{what}: not an OpenAPI 3.0 document: {e}"))
}

fn server_url(doc: &Value, name: &str) -> Result<String, String> {
    doc.pointer("/servers/0/url")
        .and_then(Value::as_str)
        .map(|url| url.trim_end_matches('/').to_owned())
        .ok_or_else(|| format!("spec/{name} has no servers[0].url"))
}

// ---------------------------------------------------------------------------
// Patches. Each works on the parsed JSON, never on the files.
// ---------------------------------------------------------------------------

/// The patches every document gets.
fn patch_common(doc: &mut Value) {
    open_code_enums(doc);
    open_state_enums(doc);
    accept_message_alias(doc);
    keep_error_bodies(doc);
}

/// Visits every JSON object in `value`, depth first.
fn walk_objects(value: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            f(map);
            for child in map.values_mut() {
                walk_objects(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk_objects(child, f);
            }
        }
        _ => {}
    }
}

/// Removes `enum` from a property's schema, keeping everything else.
fn drop_property_enum(map: &mut Map<String, Value>, property: &str, wanted_type: &str) {
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        if let Some(Value::Object(schema)) = props.get_mut(property) {
            if schema.get("type").and_then(Value::as_str) == Some(wanted_type) {
                schema.remove("enum");
            }
        }
    }
}

/// The envelope's `code` is a closed integer enum in the seed. typify turns it into
/// a validating newtype, so any code outside the list (433 is already documented
/// elsewhere; the service may add more) would make the *whole* response fail to
/// parse and hide the message. A plain integer lets `kling-api-ext` map every code,
/// known or not, to an error that keeps it.
fn open_code_enums(doc: &mut Value) {
    walk_objects(doc, &mut |map| drop_property_enum(map, "code", "integer"));
}

/// Same reasoning for the task `state`: a state the service adds later must reach
/// the SDK (which treats it as still running), not fail the parse. The known
/// values stay in the property's description.
fn open_state_enums(doc: &mut Value) {
    walk_objects(doc, &mut |map| drop_property_enum(map, "state", "string"));
}

/// Real traffic names the envelope's message `msg`; some documentation examples
/// spell it `message`. Both are kept, so that an error's text is never lost.
fn accept_message_alias(doc: &mut Value) {
    walk_objects(doc, &mut |map| {
        if let Some(Value::Object(props)) = map.get_mut("properties") {
            if props.contains_key("msg") && !props.contains_key("message") {
                props.insert(
                    "message".to_owned(),
                    json!({
                        "type": "string",
                        "description": "The response message under the name some documentation examples use; real traffic uses `msg`"
                    }),
                );
            }
        }
    });
}

/// The specs document HTTP 500 as a response with no content. progenitor turns
/// such a response into `Error::ErrorResponse(ResponseValue<()>)` and throws the
/// body away, yet that body (a Cloudflare HTML page, or the envelope) is what
/// tells the caller what happened. Without the entry, every non-2xx status comes
/// back as `Error::UnexpectedResponse` with the body still readable.
fn keep_error_bodies(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            if let Some(Value::Object(responses)) = operation.get_mut("responses") {
                responses.retain(|status, _| status.starts_with('2'));
            }
        }
    }
}

/// progenitor 0.15 cannot generate `multipart/form-data` request bodies: one such
/// operation makes generation fail for the whole document. The stream upload stays
/// in the vendored document (it is the contract, and the contract tests read it);
/// `kling-api-ext` sends it with reqwest's multipart support, streaming from disk.
fn skip_multipart_operations(doc: &mut Value) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(item) = item.as_object_mut() {
            item.retain(|_, operation| {
                operation
                    .pointer("/requestBody/content/multipart~1form-data")
                    .is_none()
            });
        }
    }
    paths.retain(|_, item| item.as_object().is_some_and(|i| !i.is_empty()));
}

/// The seed's `model` enum holds only `kling/ai-avatar-v1-pro`, but the same
/// endpoint serves its siblings and the SDK lets the caller choose one. The enum
/// stays closed (a typo is caught before any request), with the siblings added.
fn admit_sibling_models(doc: &mut Value) -> Result<(), String> {
    let pointer = "/paths/~1api~1v1~1jobs~1createTask/post/requestBody/content/application~1json/schema/properties/model/enum";
    let models = doc
        .pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("spec/{}: createTask has no model enum", API_SPECS[0]))?;
    for id in SIBLING_MODELS {
        if !models.iter().any(|m| m == id) {
            models.push(json!(id));
        }
    }
    Ok(())
}

/// Merges `other` into `base`: paths must not collide, and a component defined by
/// both must be defined identically (`components.responses.Error` and the
/// security scheme are shared on purpose).
fn merge(base: &mut Value, other: Value, name: &str) -> Result<(), String> {
    let Value::Object(other) = other else {
        return Err(format!("spec/{name} is not a JSON object"));
    };
    if let Some(Value::Object(paths)) = other.get("paths") {
        let base_paths = base
            .get_mut("paths")
            .and_then(Value::as_object_mut)
            .ok_or("the base document has no paths")?;
        for (path, item) in paths {
            if base_paths.contains_key(path) {
                return Err(format!("spec/{name}: path {path} is already defined"));
            }
            base_paths.insert(path.clone(), item.clone());
        }
    }
    if let Some(Value::Object(components)) = other.get("components") {
        let base_components = base
            .as_object_mut()
            .ok_or("the base document is not an object")?
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("the base document's components is not an object")?;
        for (kind, entries) in components {
            let Value::Object(entries) = entries else {
                continue;
            };
            let target = base_components
                .entry(kind.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| format!("components.{kind} is not an object"))?;
            for (key, value) in entries {
                match target.get(key) {
                    Some(existing) if existing != value => {
                        return Err(format!(
                        "spec/{name}: components.{kind}.{key} differs from the one already defined"
                    ))
                    }
                    Some(_) => {}
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

struct Generated {
    client: String,
    mock: String,
}

fn settings() -> progenitor::GenerationSettings {
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Positional)
        .with_tag(progenitor::TagStyle::Merged)
        .with_derive("schemars::JsonSchema")
        // The client carries headers to set on every request (User-Agent,
        // Authorization). `kling-api-ext` fills them in; doing it here rather than
        // with `reqwest` default headers means a caller's own `reqwest::Client`
        // works too.
        .with_inner_type(quote::quote!(::reqwest::header::HeaderMap))
        .with_pre_hook(quote::quote!(
            |headers: &::reqwest::header::HeaderMap, request: &mut ::reqwest::Request| {
                for (name, value) in headers.iter() {
                    request.headers_mut().insert(name.clone(), value.clone());
                }
            }
        ));
    settings
}

fn generate(spec: &openapiv3::OpenAPI, crate_path: &str, what: &str) -> Result<Generated, String> {
    let tokens = progenitor::Generator::new(&settings())
        .generate_tokens(spec)
        .map_err(|e| format!("{what}: progenitor failed: {e}"))?;
    let mock = progenitor::Generator::new(&settings())
        .httpmock(spec, crate_path)
        .map_err(|e| format!("{what}: progenitor (httpmock) failed: {e}"))?;
    let mut client = parse_code(tokens, what)?;
    add_schema_length_limits(&mut client);
    Ok(Generated {
        client: format_code(&client),
        mock: format_code(&parse_code(mock, what)?),
    })
}

fn parse_code(tokens: proc_macro2::TokenStream, what: &str) -> Result<syn::File, String> {
    syn::parse2(tokens).map_err(|e| format!("{what}: generated code does not parse: {e}"))
}

/// typify checks a string's `maxLength` in the newtype it generates (counting
/// characters, as JSON Schema does) but does not tell schemars, so the derived
/// JSON Schema of the createTask body would lose the prompt's 5000-character
/// limit. This adds `#[schemars(length(max = N))]` to every field of such a newtype, with N
/// read from typify's own check, so the derived schema agrees with the spec.
/// (Optional fields of such a type would need `Option<T>` matched too; this spec
/// has none.)
fn add_schema_length_limits(file: &mut syn::File) {
    let Some(types) = file.items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == "types" => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    }) else {
        return;
    };
    let mut limits = BTreeMap::new();
    for item in types.iter() {
        let syn::Item::Impl(imp) = item else { continue };
        let body = quote::quote!(#imp).to_string().replace(' ', "");
        if !body.starts_with("impl::std::str::FromStrfor") {
            continue;
        }
        if let Some(rest) = body.split_once("chars().count()>").map(|(_, rest)| rest) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(max) = digits.parse::<u64>() {
                limits.insert(type_name(&imp.self_ty), max);
            }
        }
    }
    // schemars 0.8 inlines a transparent newtype and ignores attributes on its
    // inner field, so the limit goes on each field that uses the newtype.
    for item in types.iter_mut() {
        let syn::Item::Struct(s) = item else { continue };
        let syn::Fields::Named(fields) = &mut s.fields else {
            continue;
        };
        for field in fields.named.iter_mut() {
            let Some(max) = limits.get(&type_name(&field.ty)) else {
                continue;
            };
            let max = proc_macro2::Literal::u64_unsuffixed(*max);
            field
                .attrs
                .push(syn::parse_quote!(#[schemars(length(max = #max))]));
        }
    }
}

fn format_code(file: &syn::File) -> String {
    format!(
        "// @generated by kling-api/build.rs from spec/*.json with progenitor. Do not edit:\n\
         // change the spec, a patch in build.rs or a generator setting instead.\n\n{}",
        prettyplease::unparse(file)
    )
}

// ---------------------------------------------------------------------------
// The readable surface summary
// ---------------------------------------------------------------------------

fn describe_surface(module: &str, code: &str) -> Result<String, String> {
    let file: syn::File = syn::parse_str(code)
        .map_err(|e| format!("{module}: generated code does not parse: {e}"))?;
    let mut ops = Vec::new();
    let mut types = BTreeMap::new();
    for item in &file.items {
        match item {
            syn::Item::Impl(imp) if imp.trait_.is_none() && type_name(&imp.self_ty) == "Client" => {
                for item in &imp.items {
                    if let syn::ImplItem::Fn(f) = item {
                        if matches!(f.vis, syn::Visibility::Public(_)) && f.sig.asyncness.is_some()
                        {
                            ops.push(describe_op(f));
                        }
                    }
                }
            }
            syn::Item::Mod(m) if m.ident == "types" => {
                if let Some((_, items)) = &m.content {
                    for item in items {
                        describe_type(item, &mut types);
                    }
                }
            }
            _ => {}
        }
    }
    ops.sort();
    let mut out = format!("\n## {module}\n");
    for op in ops {
        writeln!(out, "{op}").unwrap();
    }
    for lines in types.values() {
        for line in lines {
            writeln!(out, "{line}").unwrap();
        }
    }
    Ok(out)
}

fn type_name(ty: &syn::Type) -> String {
    tidy(&quote::quote!(#ty).to_string())
}

/// Renders a type as a person would write it, without the `::std::...` paths.
fn tidy(tokens: &str) -> String {
    let mut s = tokens.replace(' ', "");
    for prefix in [
        "::std::option::",
        "::std::string::",
        "::std::vec::",
        "::std::collections::",
        "::std::primitive::",
        "types::",
        "::reqwest::",
    ] {
        s = s.replace(prefix, "");
    }
    s.replace(',', ", ").replace("&'a", "&")
}

fn doc_text(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// "Sends a `POST` request to `/api/v1/jobs/createTask`" → "POST /api/v1/jobs/createTask".
fn http_route(doc: &str) -> String {
    let tail = doc.rsplit_once("Sends a `").map_or("", |(_, tail)| tail);
    let parts: Vec<&str> = tail.split('`').collect();
    match (parts.first(), parts.get(2)) {
        (Some(method), Some(path)) if !method.is_empty() => format!("{method} {path}"),
        _ => "? ?".to_owned(),
    }
}

fn describe_op(f: &syn::ImplItemFn) -> String {
    let args: Vec<String> = f
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(pat) => Some(format!(
                "{}: {}",
                pat_name(&pat.pat).unwrap_or_else(|| "_".to_owned()),
                type_name(&pat.ty)
            )),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    let output = match &f.sig.output {
        syn::ReturnType::Type(_, ty) => type_name(ty),
        syn::ReturnType::Default => "()".to_owned(),
    };
    // Result<ResponseValue<T>, Error<()>> → T
    let success = output
        .strip_prefix("Result<ResponseValue<")
        .and_then(|s| s.split_once(">, "))
        .map(|(t, _)| t.to_owned())
        .unwrap_or(output);
    format!(
        "op {}: {} ({}) -> {}",
        f.sig.ident,
        http_route(&doc_text(&f.attrs)),
        args.join(", "),
        success
    )
}

fn pat_name(pat: &syn::Pat) -> Option<String> {
    match pat {
        syn::Pat::Ident(ident) => Some(ident.ident.to_string()),
        _ => None,
    }
}

/// The JSON name of a field or variant: its `#[serde(rename = "...")]`, or its own.
fn serde_rename(attrs: &[syn::Attribute]) -> Option<String> {
    for attr in attrs {
        if !attr.path().is_ident("serde") {
            continue;
        }
        let mut found = None;
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: syn::LitStr = meta.value()?.parse()?;
                found = Some(value.value());
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

fn describe_type(item: &syn::Item, types: &mut BTreeMap<String, Vec<String>>) {
    match item {
        syn::Item::Struct(s) if matches!(s.vis, syn::Visibility::Public(_)) => {
            let name = s.ident.to_string();
            let mut lines = Vec::new();
            match &s.fields {
                syn::Fields::Named(fields) => {
                    lines.push(format!("type {name} (struct)"));
                    for field in &fields.named {
                        let ident = field
                            .ident
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        let json = serde_rename(&field.attrs).unwrap_or_else(|| ident.clone());
                        lines.push(format!(
                            "field {name}.{ident}: {} = \"{json}\"",
                            type_name(&field.ty)
                        ));
                    }
                }
                syn::Fields::Unnamed(fields) => {
                    let inner: Vec<String> =
                        fields.unnamed.iter().map(|f| type_name(&f.ty)).collect();
                    lines.push(format!("type {name}({}) (newtype)", inner.join(", ")));
                }
                syn::Fields::Unit => lines.push(format!("type {name} (unit)")),
            }
            types.insert(name, lines);
        }
        syn::Item::Enum(e) if matches!(e.vis, syn::Visibility::Public(_)) => {
            let name = e.ident.to_string();
            let untagged = e.attrs.iter().any(|a| {
                a.path().is_ident("serde") && quote::quote!(#a).to_string().contains("untagged")
            });
            let kind = if untagged { "untagged enum" } else { "enum" };
            let mut lines = vec![format!("type {name} ({kind})")];
            for variant in &e.variants {
                let json = if untagged {
                    String::new()
                } else {
                    let name =
                        serde_rename(&variant.attrs).unwrap_or_else(|| variant.ident.to_string());
                    format!(" = \"{name}\"")
                };
                let payload = match &variant.fields {
                    syn::Fields::Unnamed(f) => format!(
                        "({})",
                        f.unnamed
                            .iter()
                            .map(|f| type_name(&f.ty))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                };
                lines.push(format!("variant {name}::{}{payload}{json}", variant.ident));
            }
            types.insert(name, lines);
        }
        _ => {}
    }
}
