//! Attachments: files encrypted with a fresh AES-256-GCM key, stored as blobs on the
//! sender's PDS; the message carries key, nonce, digest, size and location.
