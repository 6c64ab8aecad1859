//! Multibase (base58btc) and multicodec varint helpers.

use crate::CryptoError;

/// Decodes a base58btc multibase string (`z…`) into bytes.
pub(crate) fn decode_base58btc(s: &str) -> Result<Vec<u8>, CryptoError> {
    let first = s.chars().next().ok_or(CryptoError::InvalidMultibase)?;
    if first != 'z' {
        return Err(CryptoError::UnsupportedMultibase(first));
    }
    let (_, bytes) = multibase::decode(s).map_err(|_| CryptoError::InvalidMultibase)?;
    Ok(bytes)
}

/// Encodes bytes as base58btc multibase (`z…`).
pub(crate) fn encode_base58btc(bytes: &[u8]) -> String {
    multibase::encode(multibase::Base::Base58Btc, bytes)
}

/// Splits an unsigned LEB128 varint (at most 9 bytes, as multicodec allows) off `bytes`.
pub(crate) fn read_varint(bytes: &[u8]) -> Result<(u64, &[u8]), CryptoError> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // Minimal encoding only: a trailing zero byte would be a second spelling.
            if b == 0 && i > 0 {
                return Err(CryptoError::InvalidMulticodec);
            }
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(CryptoError::InvalidMulticodec)
}

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for (v, enc) in [(0xe7u64, vec![0xe7, 0x01]), (0x1200, vec![0x80, 0x24])] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(out, enc);
            assert_eq!(read_varint(&enc).unwrap(), (v, &[][..]));
        }
        assert!(read_varint(&[0x80]).is_err());
        assert!(read_varint(&[0x80, 0x00]).is_err());
        assert!(read_varint(&[]).is_err());
    }

    #[test]
    fn non_base58_prefix_refused() {
        assert_eq!(
            decode_base58btc("mAAAA"),
            Err(CryptoError::UnsupportedMultibase('m'))
        );
        assert_eq!(decode_base58btc(""), Err(CryptoError::InvalidMultibase));
        assert_eq!(
            decode_base58btc("z0OIl"),
            Err(CryptoError::InvalidMultibase)
        );
    }
}
