//! Framing: each message is a 4-byte big-endian length and that many bytes of JSON.
//!
//! JSON because the protocol is a contract people debug (`socat` and `jq` read it), serde_json is
//! already here, and unknown fields and kinds stay readable across versions; a page of 100 queue
//! rows encodes in well under a millisecond, which the key-to-frame budget (2 ms) allows.
//! The length prefix makes a frame's end unambiguous and lets a reader refuse an oversized one
//! before reading it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame either side accepts (a search page of long messages fits many times).
pub const MAX_FRAME: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than the limit ({MAX_FRAME})")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Read one frame's bytes. `Closed` when the peer closed cleanly between frames.
pub async fn read_raw<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, CodecError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(CodecError::Closed),
        Err(e) => return Err(e.into()),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(CodecError::TooLarge(n));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Read and decode one frame.
pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<T, CodecError> {
    let buf = read_raw(r).await?;
    Ok(serde_json::from_slice(&buf)?)
}

/// Encode one frame (length and JSON) into bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, value)?;
    let n = buf.len() - 4;
    if n > MAX_FRAME {
        return Err(CodecError::TooLarge(n));
    }
    buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
    Ok(buf)
}

/// Encode and write one frame, flushed.
pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), CodecError> {
    let buf = encode(value)?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write(&mut a, &serde_json::json!({"x": 1})).await.unwrap();
        let v: serde_json::Value = read(&mut b).await.unwrap();
        assert_eq!(v["x"], 1);
        // An oversized length is refused before anything is read or allocated.
        a.write_all(&((MAX_FRAME as u32) + 1).to_be_bytes())
            .await
            .unwrap();
        assert!(matches!(
            read_raw(&mut b).await,
            Err(CodecError::TooLarge(_))
        ));
        drop(a);
        assert!(matches!(read_raw(&mut b).await, Err(CodecError::Closed)));
    }
}
