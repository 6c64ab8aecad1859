//! Service-auth JWTs.
