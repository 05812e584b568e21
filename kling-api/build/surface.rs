//! The readable summary of the generated public surface: one line per
//! operation, type, field and variant, checked against `kling-api/surface.txt`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::patches::Seen;

pub fn describe(module: &str, code: &str, seen: &[Seen]) -> Result<String, String> {
    let file: syn::File = syn::parse_str(code)
        .map_err(|e| format!("{module}: generated code does not parse: {e}"))?;
    let mut types = BTreeMap::new();
    let mut methods = BTreeMap::new();
    let mut builders = BTreeMap::new();
    for item in &file.items {
        match item {
            syn::Item::Impl(imp) if imp.trait_.is_none() && type_name(&imp.self_ty) == "Client" => {
                for item in &imp.items {
                    if let syn::ImplItem::Fn(f) = item {
                        if let syn::ReturnType::Type(_, ty) = &f.sig.output {
                            let ty = type_name(ty);
                            if let Some(builder) = ty.strip_prefix("builder::") {
                                let builder = builder.split('<').next().unwrap_or(builder);
                                methods.insert(f.sig.ident.to_string(), builder.to_owned());
                            }
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
            syn::Item::Mod(m) if m.ident == "builder" => {
                if let Some((_, items)) = &m.content {
                    for item in items {
                        if let syn::Item::Impl(imp) = item {
                            if imp.trait_.is_none() {
                                let name = type_name(&imp.self_ty);
                                let name = name.split('<').next().unwrap_or(&name).to_owned();
                                builders.insert(name, imp.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut ops = Vec::new();
    for op in seen {
        let method = op.id.replace('-', "_");
        let builder = methods.get(&method).ok_or_else(|| {
            format!(
                "{module}: pinned operation {} has no method `{method}` on Client",
                op.id
            )
        })?;
        let imp = builders
            .get(builder)
            .ok_or_else(|| format!("{module}: no builder {builder} for `{method}`"))?;
        ops.push(describe_op(&method, op, imp));
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

pub fn type_name(ty: &syn::Type) -> String {
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

/// `op get_task_details: GET /api/v1/jobs/recordInfo (task_id: String) -> GetTaskDetailsResponse [spec: get-task-details]`:
/// the builder's setters with the types they take, and what `send` returns.
fn describe_op(method: &str, op: &Seen, imp: &syn::ItemImpl) -> String {
    let mut args = Vec::new();
    let mut success = "?".to_owned();
    for item in &imp.items {
        let syn::ImplItem::Fn(f) = item else { continue };
        let name = f.sig.ident.to_string();
        if name == "send" {
            if let syn::ReturnType::Type(_, ty) = &f.sig.output {
                let output = type_name(ty);
                // Result<ResponseValue<T>, Error<()>> -> T
                success = output
                    .strip_prefix("Result<ResponseValue<")
                    .and_then(|s| s.split_once(">, "))
                    .map_or(output.clone(), |(t, _)| t.to_owned());
            }
            continue;
        }
        if name == "new" || name.ends_with("_map") {
            continue;
        }
        // `fn body<V>(self, value: V) where V: TryInto<T>`: the type is T.
        let bound = f.sig.generics.where_clause.as_ref().and_then(|w| {
            w.predicates.iter().find_map(|p| match p {
                syn::WherePredicate::Type(t) => t.bounds.iter().find_map(|b| {
                    let b = tidy(&quote::quote!(#b).to_string());
                    b.split_once("TryInto<")
                        .map(|(_, rest)| rest.trim_end_matches('>').to_owned())
                }),
                _ => None,
            })
        });
        args.push(format!("{name}: {}", bound.unwrap_or_else(|| "?".into())));
    }
    args.sort();
    let renamed = if op.spec_id == op.id {
        String::new()
    } else {
        format!(" [the document calls it {:?}]", op.spec_id)
    };
    format!(
        "op {method}: {} {} ({}) -> {success}{renamed}",
        op.method.to_uppercase(),
        op.path,
        args.join(", ")
    )
}

/// The JSON name of a field or variant: its `#[serde(rename = "...")]`, or its own.
pub fn serde_rename(attrs: &[syn::Attribute]) -> Option<String> {
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
