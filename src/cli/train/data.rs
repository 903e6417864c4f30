//! The embedded CC0 images (`data/images/`, provenance in `data/images/PROVENANCE.md`).

/// A decoded 8-bit grayscale image, values scaled to [0, 1].
pub struct Image {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Row-major pixels.
    pub pixels: Vec<f64>,
}

impl Image {
    /// Pixel (row, col).
    pub fn at(&self, r: usize, c: usize) -> f64 {
        self.pixels[r * self.width + c]
    }
}

/// The three textures, in class order.
pub const TEXTURES: [(&str, &[u8]); 3] = [
    ("brick", include_bytes!("../../../data/images/brick.png")),
    ("grass", include_bytes!("../../../data/images/grass.png")),
    ("gravel", include_bytes!("../../../data/images/gravel.png")),
];

/// The natural-image photograph ("cameraman", CC0), for patch experiments.
pub const CAMERA: (&str, &[u8]) = ("camera", include_bytes!("../../../data/images/camera.png"));

/// Decodes an embedded PNG (8-bit grayscale, or RGB/RGBA converted by luminance).
///
/// # Errors
/// A malformed or unsupported PNG.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Image, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{name}.png: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| format!("{name}.png: image too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("{name}.png: {e}"))?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "{name}.png: expected 8-bit samples, got {:?}",
            info.bit_depth
        ));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(format!("{name}.png: unsupported colour type {other:?}")),
    };
    let pixels = (0..w * h)
        .map(|i| {
            let p = &buf[i * ch..i * ch + ch];
            let v = if ch >= 3 {
                0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
            } else {
                p[0] as f64
            };
            v / 255.0
        })
        .collect();
    Ok(Image {
        width: w,
        height: h,
        pixels,
    })
}
