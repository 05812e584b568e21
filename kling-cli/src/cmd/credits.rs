//! `kling credits`: the account balance.

use crate::context::Context;
use crate::error::code;
use kling_api_ext::Error;
use serde_json::json;

pub async fn credits(ctx: &Context) -> Result<u8, Error> {
    let credits = ctx.client.credits().await?;
    if ctx.out.json {
        ctx.out.document(&json!({"credits": credits}));
    } else {
        ctx.out.text(&format!("{credits}"));
    }
    Ok(code::OK)
}
