//! Generates the Apikley clients from the OpenAPI documents in `spec/`.
//!
//! The documents are read as JSON, patched (`patches.rs`: each patch is named,
//! says why it exists and fails the build when its target is gone), merged
//! where they share a server, and handed to progenitor. Nothing generated is
//! committed: the output goes to `OUT_DIR`:
//!
//! - `api.rs`: createTask, recordInfo, credit and download-url (one `Client`);
//! - `upload.rs`: the upload API, on its own server (its own `Client`);
//! - `api_mock.rs`, `upload_mock.rs`: progenitor's typed httpmock helpers;
//! - `consts.rs`: the default base URLs, read from the documents' `servers`;
//! - `contract/*.json`: each document after its contract patches (the
//!   vendored one's known defects fixed), exposed as `kling_api::spec`;
//! - `source/*.json`: each document as read, byte for byte
//!   (`kling_api::spec::SOURCES`, for the drift check);
//! - `surface.txt` (`surface.rs`): a readable summary of the generated public
//!   surface, checked against the committed `kling-api/surface.txt`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod patches;
mod surface;

/// The documents that share the API server, merged into one client. The first
/// one is the seed's contract and provides the merged document's `info`.
const API_SPECS: &[&str] = &[
    "ai-avatar-v1-pro.json",
    "get-task-details.json",
    "common.json",
];
/// The upload API lives on its own server.
const UPLOAD_SPEC: &str = "file-upload.json";

fn main() {
    if let Err(message) = run() {
        // A build script's `Err` is printed with `Debug`; print it plainly.
        eprintln!("kling-api build script: {message}");
        std::process::exit(1);
    }
}

/// Where the documents are: `KLING_API_SPEC_DIR` when set (to build against
/// a changed copy, as `.ci/probe` does), else `spec/` inside the package (what
/// `cargo package` ships), else the workspace's top-level `spec/`.
fn spec_dir(manifest_dir: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=KLING_API_SPEC_DIR");
    if let Some(dir) = std::env::var_os("KLING_API_SPEC_DIR") {
        return PathBuf::from(dir);
    }
    let inside = manifest_dir.join("spec");
    if inside.is_dir() {
        inside
    } else {
        manifest_dir.join("..").join("spec")
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let spec_dir = spec_dir(&manifest_dir);
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", spec_dir.display());
    let contract_dir = out_dir.join("contract");
    let source_dir = out_dir.join("source");
    for dir in [&contract_dir, &source_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }

    // Each document: contract patches (kept and exposed), then generation patches.
    let prepare = |name: &str| -> Result<(Value, Vec<patches::Seen>), String> {
        let raw = read(&spec_dir, name)?;
        write(&source_dir.join(name), &raw)?;
        let mut doc = parse(&raw, name)?;
        patches::contract(name, &mut doc)?;
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        write(&contract_dir.join(name), &text)?;
        let seen = patches::generation(name, &mut doc)?;
        Ok((doc, seen))
    };

    // The API server: the seed's createTask document plus the hand-written ones.
    let mut api: Option<Value> = None;
    let mut api_ops = Vec::new();
    for name in API_SPECS {
        let (doc, seen) = prepare(name)?;
        api_ops.extend(seen);
        match api.as_mut() {
            None => api = Some(doc),
            Some(base) => merge(base, doc, name)?,
        }
    }
    let api = api.expect("API_SPECS is not empty");
    let api_base = server_url(&api, API_SPECS[0])?;
    let (upload, upload_ops) = prepare(UPLOAD_SPEC)?;
    let upload_base = server_url(&upload, UPLOAD_SPEC)?;

    let api_limits = patches::length_limits(&api);
    let upload_limits = patches::length_limits(&upload);
    let api = to_openapi(api, "the merged API documents")?;
    let upload = to_openapi(upload, UPLOAD_SPEC)?;

    let api_code = generate(&api, "crate", "the merged API documents", &api_limits)?;
    let upload_code = generate(&upload, "crate::upload", UPLOAD_SPEC, &upload_limits)?;

    let mut summary = String::new();
    summary.push_str(
        "# Generated public surface of kling-api, one line per item.\n\
         # Regenerate with: EXPECTORATE=overwrite cargo test -p kling-api --test surface\n\
         # Reading guide: `op` = a method of Client with its HTTP method, path, the builder's\n\
         # setters and the success type; `type` = a generated type; `field` = one of its\n\
         # fields with the JSON name.\n",
    );
    summary.push_str(&surface::describe("kling_api", &api_code.client, &api_ops)?);
    summary.push_str(&surface::describe(
        "kling_api::upload",
        &upload_code.client,
        &upload_ops,
    )?);

    write(&out_dir.join("api.rs"), &api_code.client)?;
    write(&out_dir.join("api_mock.rs"), &api_code.mock)?;
    write(&out_dir.join("upload.rs"), &upload_code.client)?;
    write(&out_dir.join("upload_mock.rs"), &upload_code.mock)?;
    write(&out_dir.join("surface.txt"), &summary)?;
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

fn read(dir: &Path, name: &str) -> Result<String, String> {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read spec/{name}: {e}"))
}

fn parse(text: &str, name: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("spec/{name} is not valid JSON: {e}"))
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
        .with_interface(progenitor::InterfaceStyle::Builder)
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

fn generate(
    spec: &openapiv3::OpenAPI,
    crate_path: &str,
    what: &str,
    limits: &[(String, String, u64)],
) -> Result<Generated, String> {
    let tokens = progenitor::Generator::new(&settings())
        .generate_tokens(spec)
        .map_err(|e| format!("{what}: progenitor failed: {e}"))?;
    let mock = progenitor::Generator::new(&settings())
        .httpmock(spec, crate_path)
        .map_err(|e| format!("{what}: progenitor (httpmock) failed: {e}"))?;
    let mut client = parse_code(tokens, what)?;
    add_schema_length_limits(&mut client, limits).map_err(|e| format!("{what}: {e}"))?;
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
/// limit. This adds `#[schemars(length(max = N))]` to each field the document
/// gives a `maxLength` (read from the document, `patches::length_limits`); a
/// limit whose field is not found fails the build.
fn add_schema_length_limits(
    file: &mut syn::File,
    limits: &[(String, String, u64)],
) -> Result<(), String> {
    let types = file
        .items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_mut().map(|(_, items)| items),
            _ => None,
        })
        .ok_or("the generated code has no `types` module")?;
    for (schema, property, max) in limits {
        // schemars 0.8 inlines a transparent newtype and ignores attributes on
        // its inner field, so the limit goes on the field that uses it.
        let field = types
            .iter_mut()
            .find_map(|item| match item {
                syn::Item::Struct(s) if s.ident == schema.as_str() => match &mut s.fields {
                    syn::Fields::Named(fields) => fields.named.iter_mut().find(|f| {
                        let ident = f.ident.as_ref().map(ToString::to_string);
                        surface::serde_rename(&f.attrs).or(ident).as_deref() == Some(property)
                    }),
                    _ => None,
                },
                _ => None,
            })
            .ok_or_else(|| {
                format!("maxLength of {schema}.{property}: no such field in the generated code")
            })?;
        let max = proc_macro2::Literal::u64_unsuffixed(*max);
        field
            .attrs
            .push(syn::parse_quote!(#[schemars(length(max = #max))]));
    }
    Ok(())
}

fn format_code(file: &syn::File) -> String {
    format!(
        "// @generated by kling-api/build/main.rs from spec/*.json with progenitor. Do not edit:\n\
         // change the spec, a patch in build/patches.rs or a generator setting instead.\n\n{}",
        prettyplease::unparse(file)
    )
}
