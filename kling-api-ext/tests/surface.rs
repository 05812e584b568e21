//! The SDK's public surface, as a reviewed snapshot (`surface.txt`, as
//! `kling-api/surface.txt` is for the generated client).
//!
//! Read from the source with `syn`: first every name a user can import (the
//! crate root's and each public module's `pub use` and `pub mod`), then every
//! `pub` item with its signature, and every public method by type, sorted so
//! that moving code between files changes nothing. A change to the public API
//! fails here with a line diff until someone reviews it and accepts it:
//!
//! ```text
//! EXPECTORATE=overwrite cargo test -p kling-api-ext --test surface
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::{ImplItem, Item, Visibility};

#[derive(Default)]
struct Surface {
    /// Module path → the names it makes public.
    names: BTreeMap<String, BTreeSet<String>>,
    /// Every `pub` item, by name.
    items: BTreeSet<String>,
    /// Type → its public methods and the traits it implements.
    impls: BTreeMap<String, BTreeSet<String>>,
}

fn tidy(tokens: impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (" : ", ": "),
        ("{ ", "{"),
        (", }", "}"),
        (" }", "}"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
        ("# [", "#["),
        ("! (", "!("),
        (" !", "!"),
    ] {
        while text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text
}

fn public(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

/// Whether the item is compiled only for tests or another target.
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let text = tidy(&a.meta);
            text.contains("test") || text.contains("fuzzing") || text.contains("kling_probe")
        }
    })
}

fn signature(sig: &syn::Signature) -> String {
    tidy(sig)
}

fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => tidy(other),
    }
}

impl Surface {
    fn module(&mut self, file: &Path, path: &str, reachable: bool) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dir = if file.ends_with("lib.rs") || file.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        self.items_of(&parsed.items, &dir, path, reachable);
    }

    fn items_of(&mut self, items: &[Item], dir: &Path, path: &str, reachable: bool) {
        for item in items {
            match item {
                Item::Mod(m) if !test_only(&m.attrs) => {
                    let name = m.ident.to_string();
                    let is_pub = public(&m.vis);
                    if reachable && is_pub {
                        self.names
                            .entry(path.to_owned())
                            .or_default()
                            .insert(format!("mod {name}"));
                    }
                    let child = format!("{path}::{name}");
                    match &m.content {
                        Some((_, inner)) => {
                            self.items_of(inner, &dir.join(&name), &child, reachable && is_pub)
                        }
                        None => {
                            let file: PathBuf = [
                                dir.join(format!("{name}.rs")),
                                dir.join(&name).join("mod.rs"),
                            ]
                            .into_iter()
                            .find(|p| p.exists())
                            .unwrap_or_else(|| panic!("module {child} has no file"));
                            self.module(&file, &child, reachable && is_pub);
                        }
                    }
                }
                Item::Use(u) if public(&u.vis) && reachable && !test_only(&u.attrs) => {
                    self.names
                        .entry(path.to_owned())
                        .or_default()
                        .insert(format!("use {}", tidy(&u.tree)));
                }
                Item::Fn(f) if public(&f.vis) && !test_only(&f.attrs) => {
                    self.items.insert(signature(&f.sig));
                }
                Item::Const(c) if public(&c.vis) && !test_only(&c.attrs) => {
                    self.items
                        .insert(format!("const {}: {}", c.ident, tidy(&c.ty)));
                }
                Item::Type(t) if public(&t.vis) && !test_only(&t.attrs) => {
                    self.items.insert(format!(
                        "type {}{} = {}",
                        t.ident,
                        tidy(&t.generics),
                        tidy(&t.ty)
                    ));
                }
                Item::Struct(s) if public(&s.vis) && !test_only(&s.attrs) => {
                    let fields: Vec<String> = s
                        .fields
                        .iter()
                        .filter(|f| public(&f.vis))
                        .map(|f| match &f.ident {
                            Some(name) => format!("{name}: {}", tidy(&f.ty)),
                            None => tidy(&f.ty),
                        })
                        .collect();
                    self.items.insert(format!(
                        "struct {}{} {{ {} }}",
                        s.ident,
                        tidy(&s.generics),
                        fields.join(", ")
                    ));
                }
                Item::Enum(e) if public(&e.vis) && !test_only(&e.attrs) => {
                    let variants: Vec<String> = e
                        .variants
                        .iter()
                        .map(|v| match &v.fields {
                            syn::Fields::Unit => v.ident.to_string(),
                            syn::Fields::Unnamed(f) => format!("{}{}", v.ident, tidy(f)),
                            syn::Fields::Named(f) => format!(
                                "{} {{ {} }}",
                                v.ident,
                                f.named
                                    .iter()
                                    .map(|f| format!(
                                        "{}: {}",
                                        f.ident.as_ref().unwrap(),
                                        tidy(&f.ty)
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        })
                        .collect();
                    self.items
                        .insert(format!("enum {} {{ {} }}", e.ident, variants.join(", ")));
                }
                Item::Trait(t) if public(&t.vis) && !test_only(&t.attrs) => {
                    let methods: Vec<String> = t
                        .items
                        .iter()
                        .filter_map(|i| match i {
                            syn::TraitItem::Fn(f) => Some(signature(&f.sig)),
                            _ => None,
                        })
                        .collect();
                    self.items.insert(format!(
                        "trait {}{}: {} {{ {} }}",
                        t.ident,
                        tidy(&t.generics),
                        tidy(&t.supertraits),
                        methods.join("; ")
                    ));
                }
                Item::Impl(imp) if !test_only(&imp.attrs) => {
                    let ty = type_name(&imp.self_ty);
                    let entry = self.impls.entry(ty).or_default();
                    match &imp.trait_ {
                        Some((trait_path, _)) => {
                            entry.insert(format!("impl {}", tidy(trait_path)));
                        }
                        None => {
                            for i in &imp.items {
                                if let ImplItem::Fn(f) = i
                                    && public(&f.vis)
                                {
                                    entry.insert(signature(&f.sig));
                                }
                                if let ImplItem::Const(c) = i
                                    && public(&c.vis)
                                {
                                    entry.insert(format!("const {}: {}", c.ident, tidy(&c.ty)));
                                }
                            }
                        }
                    }
                }
                // The crate's `setters!` macro writes one builder method per field.
                Item::Macro(m) if m.mac.path.is_ident("setters") => {
                    let text = tidy(&m.mac.tokens);
                    let (ty, fields) = text.split_once('{').unwrap_or((&text, ""));
                    let entry = self.impls.entry(ty.trim().to_owned()).or_default();
                    for field in fields.split("=>").filter_map(|part| {
                        let part = part.rsplit(',').next()?.trim();
                        let (name, ty) = part.split_once(':')?;
                        Some(format!(
                            "fn {}(self, value: {}) -> Self",
                            name.trim(),
                            ty.trim()
                        ))
                    }) {
                        entry.insert(field);
                    }
                }
                _ => {}
            }
        }
    }

    fn render(&self) -> String {
        let mut out = String::from("# Names a user can import\n");
        for (path, names) in &self.names {
            out.push_str(&format!("\n{path}\n"));
            for name in names {
                out.push_str(&format!("    {name}\n"));
            }
        }
        out.push_str("\n# Public items\n\n");
        for item in &self.items {
            out.push_str(&format!("{item}\n"));
        }
        out.push_str("\n# Methods and traits, by type\n");
        for (ty, methods) in self.impls.iter().filter(|(_, m)| !m.is_empty()) {
            out.push_str(&format!("\n{ty}\n"));
            for method in methods {
                out.push_str(&format!("    {method}\n"));
            }
        }
        out
    }
}

#[test]
fn public_surface_matches_snapshot() {
    let mut surface = Surface::default();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    surface.module(&lib, "kling_api_ext", true);
    expectorate::assert_contents("surface.txt", &surface.render());
}

/// The front page stays small: about 40 names at the crate root.
#[test]
fn the_crate_root_exports_at_most_forty_names() {
    let mut surface = Surface::default();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    surface.module(&lib, "kling_api_ext", true);
    let root = &surface.names["kling_api_ext"];
    let count: usize = root
        .iter()
        .map(|entry| {
            let entry = entry.trim_start_matches("use ").trim_start_matches("mod ");
            // `a::{B, C}` names two; `a::B` and `kling_api` one.
            match entry.split_once('{') {
                Some((_, list)) => list.trim_end_matches('}').split(',').count(),
                None => 1,
            }
        })
        .sum();
    assert!(count <= 40, "{count} names at the crate root: {root:#?}");
}
