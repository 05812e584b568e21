//! The generated public surface, as a reviewed snapshot.
//!
//! The build script (`build/surface.rs`) summarises what progenitor generated (operations, types, fields, one
//! line each) into `GENERATED_SURFACE`. This test compares it with the committed
//! `surface.txt`, so that any spec or generator change that alters the public API
//! fails here with a line diff until someone looks at it and accepts it:
//!
//! ```text
//! EXPECTORATE=overwrite cargo test -p kling-api --test surface
//! ```

#[test]
fn generated_surface_matches_snapshot() {
    expectorate::assert_contents("surface.txt", kling_api::GENERATED_SURFACE);
}
