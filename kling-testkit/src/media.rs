//! Media made on the spot, and a check of MP4 files.

/// A PCM WAV of `seconds` of silence at 8 kHz mono.
pub fn wav(seconds: f64) -> Vec<u8> {
    let samples = (8000.0 * seconds) as u32;
    let data_len = samples * 2;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(out.len() + data_len as usize, 0);
    out
}

/// The first bytes of a PNG of the given size (enough for type and dimensions).
pub fn png_head(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out
}

/// An MPEG-1 Layer III file of about `seconds` of silence: 128 kbit/s,
/// 44.1 kHz, mono, with zeroed frames (each 1,152 samples) and no tags.
pub fn mp3(seconds: f64) -> Vec<u8> {
    // 144 * 128000 / 44100 = 417 bytes per frame (no padding).
    const FRAME: usize = 417;
    let frames = (seconds * 44_100.0 / 1152.0).round().max(1.0) as usize;
    let mut frame = vec![0u8; FRAME];
    // Sync, MPEG-1, Layer III, no CRC; 128 kbit/s, 44.1 kHz, no padding; mono.
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0xC4]);
    frame.repeat(frames)
}

/// Checks an MP4's box structure: top-level boxes tile the file exactly, with
/// `ftyp` first, then `moov` (holding `mvhd` and at least one `trak`) and `mdat`.
pub fn check_mp4(bytes: &[u8]) -> Result<Vec<String>, String> {
    fn boxes(data: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            if pos + 8 > data.len() {
                return Err(format!("truncated box header at {pos}"));
            }
            let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
            let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
            let (size, header) = match size32 {
                1 => (
                    u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
                    16,
                ),
                0 => ((data.len() - pos) as u64, 8),
                n => (n, 8),
            };
            let end = pos as u64 + size;
            if size < header || end > data.len() as u64 {
                return Err(format!("box {kind} at {pos} has a bad size {size}"));
            }
            out.push((kind, &data[pos + header as usize..end as usize]));
            pos = end as usize;
        }
        Ok(out)
    }
    let top = boxes(bytes)?;
    let names: Vec<String> = top.iter().map(|(k, _)| k.clone()).collect();
    if names.first().map(String::as_str) != Some("ftyp") {
        return Err(format!("first box is not ftyp: {names:?}"));
    }
    let moov = top.iter().find(|(k, _)| k == "moov").ok_or("no moov")?.1;
    let inner: Vec<String> = boxes(moov)?.into_iter().map(|(k, _)| k).collect();
    if !inner.contains(&"mvhd".to_owned()) || !inner.contains(&"trak".to_owned()) {
        return Err(format!("moov lacks mvhd or trak: {inner:?}"));
    }
    if !names.contains(&"mdat".to_owned()) {
        return Err("no mdat".into());
    }
    Ok(names)
}
