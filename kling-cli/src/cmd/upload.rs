//! `kling upload FILE`: upload a file and print its URL.

use crate::cli::UploadArgs;
use crate::context::Context;
use crate::error::code;
use crate::ui;
use kling_api_ext::Error;

pub async fn upload(ctx: &Context, args: UploadArgs) -> Result<u8, Error> {
    let bar = ui::bytes_bar(&ctx.out, "upload");
    let uploaded = ctx
        .client
        .upload_file(&args.path)
        .options(kling_api_ext::upload::TransferOptions::new().progress(ui::feed(&bar)))
        .await;
    bar.finish_and_clear();
    let uploaded = uploaded?;
    if ctx.out.json {
        ctx.out
            .document(&serde_json::to_value(&uploaded).expect("serializable"));
    } else {
        ctx.out.text(uploaded.url.as_str());
    }
    Ok(code::OK)
}
