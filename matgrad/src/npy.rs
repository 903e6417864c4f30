//! `.npy` in and out (feature `npy`): 2-D float64 (`<f8`) or complex128 (`<c16`), C or
//! Fortran order, zero-sized arrays included; defensive against hostile headers (sizes are
//! checked before anything is allocated); atomic writes.
//!
//! ```
//! # fn main() -> Result<(), matgrad::Error> {
//! use matgrad::engine::Value;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("a.npy");
//! let a = Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]]);
//! matgrad::npy::write(&path, &a)?;
//! let back = matgrad::npy::read(&path)?;
//! assert_eq!(back.as_real().unwrap()[(1, 0)], 3.0);
//! # Ok(()) }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use faer::Mat;
use matgrad_engine::{Error, Value, C64};
use npyz::WriterBuilder;

/// Files larger than this are refused before anything is read (1 GiB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Arrays claiming more elements than this are refused (≈ 0.8 GB of f64).
pub const MAX_ELEMENTS: u64 = 100_000_000;
/// Header lengths above this are refused (numpy writes a few hundred bytes).
const MAX_HEADER_BYTES: usize = 1 << 16;

fn err(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads a 2-D `.npy` file into a [`Value`].
///
/// # Errors
/// [`Error::File`]: missing/unreadable file, not an .npy, unsupported dtype, rank ≠ 2,
/// too large, truncated data, NaN/inf entries.
pub fn read(path: impl AsRef<Path>) -> Result<Value, Error> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(
            path,
            format!(
                "file is {} bytes, above the limit of {MAX_FILE_BYTES}",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err(path, "not an .npy file (bad magic bytes)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(err(path, format!("unsupported .npy format version {v}"))),
    };
    if hlen > MAX_HEADER_BYTES || start + hlen > bytes.len() {
        return Err(err(
            path,
            format!(
                "header claims {hlen} bytes; the file has {} (corrupt or hostile header)",
                bytes.len()
            ),
        ));
    }
    let npy =
        npyz::NpyFile::new(&bytes[..]).map_err(|e| err(path, format!("bad .npy header: {e}")))?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(err(
            path,
            format!("expected a 2-D array, got shape {shape:?} (reshape to (n, 1) for a vector)"),
        ));
    }
    let (m, n) = (shape[0], shape[1]);
    let count = m
        .checked_mul(n)
        .ok_or_else(|| err(path, "shape overflows"))?;
    if count > MAX_ELEMENTS {
        return Err(err(
            path,
            format!("array of {count} elements is above the limit of {MAX_ELEMENTS}"),
        ));
    }
    let dtype = npy.dtype().descr();
    let dtype = dtype.trim_matches('\'');
    let item = match dtype.trim_start_matches(['<', '>', '=', '|']) {
        "f8" => 8u64,
        "c16" => 16,
        other => {
            return Err(err(
                path,
                format!("dtype {other} is not supported; use float64 (<f8) or complex128 (<c16)"),
            ))
        }
    };
    let data_bytes = (bytes.len() - start - hlen) as u64;
    if count * item > data_bytes {
        return Err(err(path, format!("header claims {count} elements of {item} bytes but only {data_bytes} data bytes follow")));
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    let (m, n) = (m as usize, n as usize);
    let at = |i: usize, j: usize| if fortran { i + j * m } else { i * n + j };
    let v = if item == 8 {
        let d: Vec<f64> = npy
            .into_vec()
            .map_err(|e| err(path, format!("cannot read data: {e}")))?;
        Value::Real(Mat::from_fn(m, n, |i, j| d[at(i, j)]))
    } else {
        let d: Vec<npyz::num_complex::Complex<f64>> = npy
            .into_vec()
            .map_err(|e| err(path, format!("cannot read data: {e}")))?;
        Value::Complex(Mat::from_fn(m, n, |i, j| {
            let z = d[at(i, j)];
            C64::new(z.re, z.im)
        }))
    };
    if !v.is_finite() {
        return Err(err(path, "contains NaN or inf; clean the data first"));
    }
    Ok(v)
}

fn encode(v: &Value) -> std::io::Result<Vec<u8>> {
    let (m, n) = v.shape();
    let mut buf = Vec::new();
    match v {
        Value::Real(a) => {
            let mut w = npyz::WriteOptions::<f64>::new()
                .default_dtype()
                .shape(&[m as u64, n as u64])
                .writer(&mut buf)
                .begin_nd()?;
            for i in 0..m {
                for j in 0..n {
                    w.push(&a[(i, j)])?;
                }
            }
            w.finish()?;
        }
        Value::Complex(a) => {
            let mut w = npyz::WriteOptions::<npyz::num_complex::Complex<f64>>::new()
                .default_dtype()
                .shape(&[m as u64, n as u64])
                .writer(&mut buf)
                .begin_nd()?;
            for i in 0..m {
                for j in 0..n {
                    let z = a[(i, j)];
                    w.push(&npyz::num_complex::Complex::new(z.re, z.im))?;
                }
            }
            w.finish()?;
        }
    }
    Ok(buf)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.matgrad-tmp-{}", std::process::id()))
}

/// Writes one value to `path` (float64 or complex128, C order), atomically.
///
/// # Errors
/// [`Error::File`] naming the file.
pub fn write(path: impl AsRef<Path>, value: &Value) -> Result<(), Error> {
    write_all_atomic(&[(path.as_ref().to_path_buf(), value.clone())])
}

/// Writes every value to its path atomically as a set: all go to temporary files in the
/// target directories first, and are renamed into place only when every write succeeded.
/// On failure the temporary files are removed and no target is created or replaced.
///
/// # Errors
/// Any I/O failure, naming the file.
pub fn write_all_atomic(outputs: &[(PathBuf, Value)]) -> Result<(), Error> {
    let mut temps = Vec::new();
    let result = (|| {
        for (path, v) in outputs {
            let tmp = temp_path(path);
            temps.push(tmp.clone());
            let bytes = encode(v).map_err(|e| err(path, format!("cannot encode: {e}")))?;
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| err(path, format!("cannot create: {e}")))?;
            f.write_all(&bytes)
                .map_err(|e| err(path, format!("cannot write: {e}")))?;
            f.sync_all()
                .map_err(|e| err(path, format!("cannot sync: {e}")))?;
        }
        for ((path, _), tmp) in outputs.iter().zip(&temps) {
            std::fs::rename(tmp, path)
                .map_err(|e| err(path, format!("cannot move into place: {e}")))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
    }
    result
}
