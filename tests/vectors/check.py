#!/usr/bin/env python3
"""Second-language check of the atmls test vectors (docs/spec.md §14).

Reads every tests/vectors/*.json file and RECOMPUTES each expected value from the vector's
inputs with Python's own libraries (cbor2 for DAG-CBOR, hashlib/base64 for CIDs and
multibase, `cryptography` for Ed25519, X25519, ML-KEM-768, HKDF, AES-GCM and
ChaCha20-Poly1305; HPKE base mode and the X-Wing combiner are built here from those
primitives, RFC 9180 and draft-connolly-cfrg-xwing-kem-06). It never trusts an expected value it did not
recompute: every field of a vector is either an input or compared with a recomputed
value, and a vector with a field the check does not use is refused.

    check.py [DIR]              check every vector
    check.py --self-test [DIR]  also mutate every character of every input and expected
                                value (integers +-1, booleans flipped, object keys renamed)
                                and require that each mutation makes its vector fail

Exit status 0 only if everything passed.
"""

import base64
import copy
import datetime
import hashlib
import hmac
import json
import os
import sys

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305


class Mismatch(Exception):
    """A recomputed value differs from the vector, or the vector is malformed."""


# ---------------------------------------------------------------------------- field access


class Fields:
    """A vector's fields; records which were used so that unused fields are refused."""

    def __init__(self, vector):
        if not isinstance(vector, dict):
            raise Mismatch("a vector is not an object")
        self.v = vector
        self.used = {"name"}

    def __call__(self, key, kind=None):
        if key not in self.v:
            raise Mismatch(f"missing field {key!r}")
        self.used.add(key)
        value = self.v[key]
        if kind is not None and (type(value) is not kind):
            raise Mismatch(f"field {key!r} is not {kind.__name__}")
        return value

    def opt(self, key, kind=None):
        return self(key, kind) if key in self.v else None

    def has(self, key):
        return key in self.v

    def done(self):
        extra = set(self.v) - self.used
        if extra:
            raise Mismatch(f"fields not checked: {sorted(extra)}")


def expect(what, computed, given):
    if computed != given:
        raise Mismatch(f"{what}: computed {computed!r}, vector has {given!r}")


# ---------------------------------------------------------------------------- encodings

HEX = "0123456789abcdef"
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def unhex(s):
    if not isinstance(s, str) or len(s) % 2 or any(c not in HEX for c in s):
        raise Mismatch(f"not lowercase hex: {s!r}")
    return bytes.fromhex(s)


def b64(data):
    return base64.b64encode(data).decode().rstrip("=")


def canonical(name, decode, encode, s):
    """Decodes `s`; only the one text form that `encode` gives back is accepted."""
    try:
        data = decode(s)
    except Exception as e:
        raise Mismatch(f"bad {name} {s!r}: {e}")
    if encode(data) != s:
        raise Mismatch(f"non-canonical {name} {s!r}")
    return data


def unb64(s):
    """Standard base64 without padding, canonical (trailing bits zero)."""
    return canonical("base64", lambda t: base64.b64decode(t + "=" * (-len(t) % 4), validate=True), b64, s)


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b32(data):
    return base64.b32encode(data).decode().rstrip("=").lower()


def unb32(s):
    """Lowercase base32 without padding, canonical (trailing bits zero)."""
    if not isinstance(s, str) or any(c not in B32 for c in s):
        raise Mismatch(f"not lowercase base32: {s!r}")
    return canonical("base32", lambda t: base64.b32decode(t.upper() + "=" * (-len(t) % 8)), b32, s)


def mailbox_id(s):
    """A mailbox id: 52 characters of lowercase base32 for 32 bytes (spec §9.1)."""
    if not isinstance(s, str) or len(s) != 52:
        raise Mismatch(f"mailbox id is not 52 characters: {s!r}")
    return unb32(s)


def cid(codec, data):
    """CIDv1, sha2-256, as bytes: 0x01 || codec || 0x12 0x20 || digest."""
    return bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()


def cid_text(codec, data):
    return "b" + b32(cid(codec, data))


def parse_cid(s):
    if not isinstance(s, str) or not s.startswith("b"):
        raise Mismatch(f"not a base32 CID: {s!r}")
    raw = unb32(s[1:])
    if len(raw) != 36 or raw[0] != 0x01 or raw[1] not in (0x55, 0x71) or raw[2:4] != b"\x12\x20":
        raise Mismatch(f"not a CIDv1 sha2-256 dag-cbor/raw: {s!r}")
    return raw


def data_model(value):
    """The atproto data model of a JSON value: $bytes -> bytes, $link -> CID (tag 42)."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return unb64(value["$bytes"])
        if set(value) == {"$link"}:
            return cbor2.CBORTag(42, b"\x00" + parse_cid(value["$link"]))
        return {k: data_model(v) for k, v in value.items()}
    if isinstance(value, list):
        return [data_model(v) for v in value]
    if isinstance(value, float):
        raise Mismatch("floats are not in the data model")
    return value


def dag_cbor(value):
    """Canonical DAG-CBOR: cbor2's canonical map order is length-first, then bytewise."""
    return cbor2.dumps(value, canonical=True)


def vl(data):
    """An MLS variable-length vector (RFC 9420 §2.1.2)."""
    n = len(data)
    if n < 1 << 6:
        head = bytes([n])
    elif n < 1 << 14:
        head = (0x4000 | n).to_bytes(2, "big")
    elif n < 1 << 30:
        head = (0x80000000 | n).to_bytes(4, "big")
    else:
        raise Mismatch("vector too long")
    return head + data


class Reader:
    """Reads RFC 9420 TLS structures: fixed-width integers and <V> vectors."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Mismatch("TLS structure ends early")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n):
        return int.from_bytes(self.take(n), "big")

    def vl(self):
        first = self.data[self.pos] if self.pos < len(self.data) else 0
        prefix = first >> 6
        if prefix == 3:
            raise Mismatch("reserved varint prefix")
        size = 1 << prefix
        n = self.uint(size) & ((1 << (8 * size - 2)) - 1)
        if size != (1 if n < 1 << 6 else 2 if n < 1 << 14 else 4):
            raise Mismatch("non-minimal varint")
        return self.take(n)


def sign_content(label, content):
    return vl(b"MLS 1.0 " + label) + vl(content)


def extensions(raw):
    r, out = Reader(raw), {}
    while r.pos < len(raw):
        kind = r.uint(2)
        if kind in out:
            raise Mismatch("duplicate extension")
        out[kind] = r.vl()
    return out


def parse_key_package(kp):
    """The fields of a KeyPackage (RFC 9420 §10, leaf node §7.2) a record is checked against."""
    r = Reader(kp)
    version, suite = r.uint(2), r.uint(2)
    r.vl()  # init_key
    leaf_start = r.pos
    r.vl()  # encryption_key
    signature_key = r.vl()
    credential_type = r.uint(2)
    identity = r.vl()
    capabilities = [r.vl() for _ in range(5)]  # versions, suites, extensions, proposals, credentials
    source = r.uint(1)
    if source != 1:
        raise Mismatch("leaf_node_source is not key_package")
    not_before, not_after = r.uint(8), r.uint(8)
    leaf_extensions = extensions(r.vl())
    leaf_tbs = kp[leaf_start : r.pos]
    leaf_signature = r.vl()
    kp_extensions = extensions(r.vl())
    kp_tbs = kp[: r.pos]
    kp_signature = r.vl()
    if r.pos != len(kp):
        raise Mismatch("trailing bytes after the KeyPackage")
    public = Ed25519PublicKey.from_public_bytes(signature_key)
    public.verify(leaf_signature, sign_content(b"LeafNodeTBS", leaf_tbs))
    public.verify(kp_signature, sign_content(b"KeyPackageTBS", kp_tbs))
    ext_types = Reader(capabilities[2])
    capability_extensions = {ext_types.uint(2) for _ in range(len(capabilities[2]) // 2)}
    return {
        "version": version,
        "suite": suite,
        "credentialType": credential_type,
        "identity": identity,
        "capabilityExtensions": capability_extensions,
        "applicationId": leaf_extensions.get(0x0001),
        "lastResort": 0x000A in kp_extensions,
        "lifetime": (not_before, not_after),
    }


def datetime_ms(ms):
    secs, milli = divmod(ms, 1000)
    t = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}Z"


def bucket(n):
    """Size buckets v1 (spec §11.5)."""
    if n < 0:
        raise Mismatch("negative length")
    if n <= 256:
        return 256
    if n <= 1 << 16:
        return 1 << (n - 1).bit_length()
    return -(-n // (1 << 16)) * (1 << 16)


# ---------------------------------------------------------------------------- crypto


def hkdf_extract(salt, ikm):
    return hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def expand_with_label(secret, label, context, length):
    info = length.to_bytes(2, "big") + vl(b"MLS 1.0 " + label) + vl(context)
    return hkdf_expand(secret, info, length)


def mls_exporter(exporter_secret, label, context, length):
    derived = expand_with_label(exporter_secret, label, b"", 32)
    return expand_with_label(derived, b"exported", hashlib.sha256(context).digest(), length)


def ed25519_public(seed):
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


KEM_SUITE = b"KEM\x00\x20"  # DHKEM(X25519, HKDF-SHA256)
HPKE_SUITE = b"HPKE\x00\x20\x00\x01\x00\x01"  # + HKDF-SHA256, AES-128-GCM


def labeled_extract(suite, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite, prk, label, info, length):
    return hkdf_expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def x25519_public(sk):
    return (
        X25519PrivateKey.from_private_bytes(sk)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def derive_key_pair(ikm):
    """RFC 9180 §7.1.3 DeriveKeyPair for X25519."""
    prk = labeled_extract(KEM_SUITE, b"", b"dkp_prk", ikm)
    sk = labeled_expand(KEM_SUITE, prk, b"sk", b"", 32)
    return sk, x25519_public(sk)


def hpke_key_schedule(shared_secret, info):
    psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(HPKE_SUITE, shared_secret, b"secret", b"")
    key = labeled_expand(HPKE_SUITE, secret, b"key", context, 16)
    nonce = labeled_expand(HPKE_SUITE, secret, b"base_nonce", context, 12)
    return key, nonce


def shared_secret(dh, enc, pk_r):
    prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh)
    return labeled_expand(KEM_SUITE, prk, b"shared_secret", enc + pk_r, 32)


def hpke_seal_base(pk_r, ikm_e, info, aad, pt):
    sk_e, pk_e = derive_key_pair(ikm_e)
    dh = X25519PrivateKey.from_private_bytes(sk_e).exchange(X25519PublicKey.from_public_bytes(pk_r))
    key, nonce = hpke_key_schedule(shared_secret(dh, pk_e, pk_r), info)
    return pk_e, AESGCM(key).encrypt(nonce, pt, aad)


def hpke_open_base(sk_r, enc, info, aad, ct):
    pk_r = x25519_public(sk_r)
    dh = X25519PrivateKey.from_private_bytes(sk_r).exchange(X25519PublicKey.from_public_bytes(enc))
    key, nonce = hpke_key_schedule(shared_secret(dh, enc, pk_r), info)
    return AESGCM(key).decrypt(nonce, ct, aad)


# X-Wing (draft-connolly-cfrg-xwing-kem-06) as the HPKE KEM of suite 0x004D (KEM id 0x647A),
# with HKDF-SHA256 and ChaCha20-Poly1305. Python's ML-KEM has no derandomized
# encapsulation: the check derives the recipient key pair and decapsulates.
XWING_LABEL = b"\\.//^\\"
XWING_HPKE_SUITE = b"HPKE\x64\x7a\x00\x01\x00\x03"


def xwing_key_pair(seed):
    """(ML-KEM private key, X25519 secret, public key pk_M || pk_X) from a 32-byte seed."""
    if len(seed) != 32:
        raise Mismatch("an X-Wing seed is 32 bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    sk_m = MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    sk_x = expanded[64:]
    return sk_m, sk_x, sk_m.public_key().public_bytes_raw() + x25519_public(sk_x)


def xwing_decapsulate(seed, ct):
    if len(ct) != 1120:
        raise Mismatch("an X-Wing ciphertext is 1120 bytes")
    sk_m, sk_x, pk = xwing_key_pair(seed)
    ct_m, ct_x = ct[:1088], ct[1088:]
    ss_m = sk_m.decapsulate(ct_m)
    ss_x = X25519PrivateKey.from_private_bytes(sk_x).exchange(X25519PublicKey.from_public_bytes(ct_x))
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk[1184:] + XWING_LABEL).digest()


def xwing_hpke_key_schedule(shared_secret, info):
    suite = XWING_HPKE_SUITE
    psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(suite, shared_secret, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", context, 32)
    nonce = labeled_expand(suite, secret, b"base_nonce", context, 12)
    return key, nonce


# ---------------------------------------------------------------------------- topics


def check_records(f):
    record = f("record", dict)
    encoded = dag_cbor(data_model(record))
    expect("dagCbor", encoded.hex(), f("dagCbor", str))
    expect("cid", cid_text(0x71, encoded), f("cid", str))
    kind = record.get("$type")
    if kind == "chat.mls.keyPackage":
        message = unb64(record["keyPackage"]["$bytes"])
        # MLSMessage: u16 version (mls10 = 1) || u16 wire_format (mls_key_package = 5) || KeyPackage
        expect("MLSMessage header", message[:4].hex(), "00010005")
        key_package = message[4:]
        parsed = parse_key_package(key_package)
        expect("KeyPackage version", parsed["version"], 1)
        expect("ciphersuite", parsed["suite"], record["ciphersuite"])
        expect("credential type (basic)", parsed["credentialType"], 1)
        expect("credential identity", parsed["identity"], f("did", str).encode())
        expect("application_id", parsed["applicationId"], vl(record["deviceId"].encode()))
        expect("last_resort extension", parsed["lastResort"], record["lastResort"])
        if not {0xF0A7, 0x000A} <= parsed["capabilityExtensions"]:
            raise Mismatch("capabilities lack 0xF0A7 or last_resort")
        reference = hashlib.sha256(vl(b"MLS 1.0 KeyPackage Reference") + vl(key_package)).digest()
        expect("keyPackageRef", b64(reference), record["keyPackageRef"]["$bytes"])
        mailbox_id(record["inbox"]["mailbox"])
    elif kind == "chat.mls.attachmentRef":
        blob = unhex(f("blob", str))
        expect("blob ref", cid_text(0x55, blob), record["blob"]["ref"]["$link"])
        expect("blob size", len(blob), record["blob"]["size"])
    elif kind != "chat.mls.declaration":
        raise Mismatch(f"unknown record type {kind!r}")


def check_group_data(f):
    expect("extensionType", f("extensionType", int), 0xF0A7)
    version = f("version", int)
    expect("version", version, 2)
    lifetime = f("messageLifetimeSeconds", int)
    if lifetime != 0 and not 60 <= lifetime <= 31536000:
        raise Mismatch("message lifetime out of bounds")
    mailbox = unhex(f("mailbox", str))
    expect("mailbox length", len(mailbox), 32)
    padding = f("padding", int)
    if padding not in (0, 1):
        raise Mismatch("unknown padding policy")
    admins = f("admins", list)
    data = (
        bytes([version])
        + vl(f("ds", str).encode())
        + mailbox
        + vl(f("groupName", str).encode())
        + vl(f("groupDescription", str).encode())
        + vl(b"".join(vl(a.encode()) for a in admins))
        + bytes([padding])
        + lifetime.to_bytes(4, "big")
    )
    expect("groupData", data.hex(), f("groupData", str))
    extension = 0xF0A7.to_bytes(2, "big") + vl(data)
    expect("extension", extension.hex(), f("extension", str))


def check_mailbox_key(f):
    expect("cipherSuite", f("cipherSuite", int), 1)
    if f.has("mailbox"):
        context = mailbox_id(f("mailbox", str))
    else:
        context = unhex(f("context", str))
    exported = mls_exporter(
        unhex(f("exporterSecret", str)), f("label", str).encode(), context, f("length", int)
    )
    expect("exported", exported.hex(), f("exported", str))
    if f.has("publicKey") or f.has("mailbox"):
        expect("mailbox label", f("label", str), "chat.mls mailbox")
        expect("publicKey", ed25519_public(exported).hex(), f("publicKey", str))


def check_signature(f):
    seed = unhex(f("seed", str))
    public = ed25519_public(seed)
    expect("publicKey", public.hex(), f("publicKey", str))
    method = f("method", str).encode()
    mailbox = mailbox_id(f("mailbox", str))
    timestamp = f("timestampMs", int).to_bytes(8, "big")
    nonce = unhex(f("nonce", str))
    expect("nonce length", len(nonce), 16)
    auth_values = None
    if f.has("body"):
        content = f("body", str).encode()
    elif f.has("query"):
        content = f("query", str).encode()
    else:
        parts = f("subscriptionQuery", str).split("&")
        kept = [p for p in parts if p != "auth" and not p.startswith("auth=")]
        auth_values = [p[len("auth=") :] for p in parts if p.startswith("auth=")]
        signed = "&".join(kept)
        expect("signedContent", signed, f("signedContent", str))
        content = signed.encode()
    digest = hashlib.sha256(content).digest()
    expect("contentSha256", digest.hex(), f("contentSha256", str))
    signing = (
        b"chat.mls/ds/v1 request\x00"
        + bytes([len(method)])
        + method
        + mailbox
        + public
        + timestamp
        + nonce
        + digest
    )
    expect("signingBytes", signing.hex(), f("signingBytes", str))
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signing)
    expect("signature", signature.hex(), f("signature", str))
    token = b64url(public + timestamp + nonce + signature)
    expect("token length", len(token), 160)
    expect("token", token, f("token", str))
    expect("authorization", "ChatMls-Mailbox " + token, f("authorization", str))
    if auth_values is not None:
        expect("auth parameter", auth_values, [token])


def check_envelope(f):
    if f.has("error"):
        header = dag_cbor({"op": -1})
        body = dag_cbor({"error": f("error", str), "message": f("message", str)})
        expect("frame", (header + body).hex(), f("frame", str))
        return
    mailbox = f("mailbox", str)
    mailbox_id(mailbox)
    kind = f("kind", str)
    if kind not in ("message", "commit", "welcome"):
        raise Mismatch(f"unknown envelope kind {kind!r}")
    seq = f("seq", int)
    if seq < 1:
        raise Mismatch("seq starts at 1")
    payload = unhex(f("payload", str))
    received = datetime_ms(f("receivedAtMs", int))
    epoch = f.opt("epoch", int)
    if (epoch is not None) != (kind == "commit"):
        raise Mismatch("epoch is given for commits only")
    as_json = {"seq": seq, "kind": kind, "payload": {"$bytes": b64(payload)}, "receivedAt": received}
    as_cbor = {"seq": seq, "kind": kind, "payload": payload, "receivedAt": received}
    if epoch is not None:
        as_json["epoch"] = epoch
        as_cbor["epoch"] = epoch
    expect("json", as_json, f("json", dict))
    frame = dag_cbor({"op": 1, "t": "#envelope"}) + dag_cbor({"mailbox": mailbox, "envelope": as_cbor})
    expect("frame", frame.hex(), f("frame", str))


def check_welcome(f):
    expect("cipherSuite", f("cipherSuite", int), 1)
    info = f("info", str)
    expect("info", info, "chat.mls welcome v1")
    sk_r, pk_r = derive_key_pair(unhex(f("recipientIkm", str)))
    expect("recipientPrivateKey", sk_r.hex(), f("recipientPrivateKey", str))
    expect("recipientPublicKey", pk_r.hex(), f("recipientPublicKey", str))
    mailbox = f("mailbox", str)
    mailbox_id(mailbox)
    fields = {
        "ds": f("ds", str),
        "fromSeq": f("fromSeq", int),
        "mailbox": mailbox,
        "version": 1,
        "welcome": unhex(f("welcome", str)),
    }
    if f.has("ratchetTree"):
        fields["ratchetTree"] = out_of_band_tree(f)
    plaintext = dag_cbor(fields)
    expect("plaintext", plaintext.hex(), f("plaintext", str))
    enc, ct = hpke_seal_base(pk_r, unhex(f("ephemeralIkm", str)), info.encode(), b"", plaintext)
    expect("enc", enc.hex(), f("enc", str))
    expect("ciphertext", ct.hex(), f("ciphertext", str))
    sealed = b"\x01" + len(enc).to_bytes(2, "big") + enc + len(ct).to_bytes(4, "big") + ct
    expect("sealed", sealed.hex(), f("sealed", str))
    payload = sealed + bytes(bucket(len(sealed)) - len(sealed))
    expect("payload", payload.hex(), f("payload", str))
    # The invitee's side: parse the layout, check the padding, open with the init key.
    given = unhex(f("payload", str))
    n = int.from_bytes(given[1:3], "big")
    m = int.from_bytes(given[3 + n : 7 + n], "big")
    if given[0] != 1 or any(given[7 + n + m :]):
        raise Mismatch("sealed layout or padding")
    opened = hpke_open_base(sk_r, given[3 : 3 + n], info.encode(), b"", given[7 + n : 7 + n + m])
    expect("opened plaintext", opened, plaintext)


def check_xwing_welcome(f):
    expect("cipherSuite", f("cipherSuite", int), 0x004D)
    info = f("info", str)
    expect("info", info, "chat.mls welcome v1")
    seed = hashlib.shake_256(unhex(f("recipientIkm", str))).digest(32)
    expect("recipientPrivateKey", seed.hex(), f("recipientPrivateKey", str))
    _, _, pk_r = xwing_key_pair(seed)
    expect("recipientPublicKey", pk_r.hex(), f("recipientPublicKey", str))
    mailbox = f("mailbox", str)
    mailbox_id(mailbox)
    plaintext = dag_cbor(
        {
            "ds": f("ds", str),
            "fromSeq": f("fromSeq", int),
            "mailbox": mailbox,
            "version": 1,
            "welcome": unhex(f("welcome", str)),
        }
    )
    expect("plaintext", plaintext.hex(), f("plaintext", str))
    enc = unhex(f("enc", str))
    # The X25519 half of the encapsulation is the sender's ephemeral public key; the
    # ML-KEM half is decapsulated (a wrong byte gives another shared secret).
    ek_x = unhex(f("ephemeralX25519", str))
    if len(ek_x) != 32 or ek_x[0] & 7 or ek_x[31] & 0x80 or not ek_x[31] & 0x40:
        raise Mismatch("ephemeralX25519 is not a clamped X25519 scalar")
    expect("enc (X25519 half)", x25519_public(ek_x).hex(), enc[1088:].hex())
    key, nonce = xwing_hpke_key_schedule(xwing_decapsulate(seed, enc), info.encode())
    ct = ChaCha20Poly1305(key).encrypt(nonce, plaintext, b"")
    expect("ciphertext", ct.hex(), f("ciphertext", str))
    sealed = b"\x01" + len(enc).to_bytes(2, "big") + enc + len(ct).to_bytes(4, "big") + ct
    expect("sealed", sealed.hex(), f("sealed", str))
    payload = sealed + bytes(bucket(len(sealed)) - len(sealed))
    expect("payload", payload.hex(), f("payload", str))
    given = unhex(f("payload", str))
    n = int.from_bytes(given[1:3], "big")
    m = int.from_bytes(given[3 + n : 7 + n], "big")
    if given[0] != 1 or any(given[7 + n + m :]):
        raise Mismatch("sealed layout or padding")
    key, nonce = xwing_hpke_key_schedule(xwing_decapsulate(seed, given[3 : 3 + n]), info.encode())
    opened = ChaCha20Poly1305(key).decrypt(nonce, given[7 + n : 7 + n + m], b"")
    expect("opened plaintext", opened, plaintext)


def check_xwing_mailbox_key(f):
    # Suite 0x004D's KDF is HKDF-SHA256, as 0x0001's: the same MLS-Exporter.
    expect("cipherSuite", f("cipherSuite", int), 0x004D)
    expect("mailbox label", f("label", str), "chat.mls mailbox")
    exported = mls_exporter(
        unhex(f("exporterSecret", str)),
        f("label", str).encode(),
        mailbox_id(f("mailbox", str)),
        f("length", int),
    )
    expect("exported", exported.hex(), f("exported", str))
    expect("publicKey", ed25519_public(exported).hex(), f("publicKey", str))


def out_of_band_tree(f):
    """The out-of-band ratchet tree of a sealed welcome (spec §11.4): recomputes the blob
    and returns the plaintext's ratchetTree map."""
    ref = f("ratchetTree", dict)
    names = {"cid", "did", "key", "size", "nonce", "digest"}
    if set(ref) != names:
        raise Mismatch(f"ratchetTree fields {sorted(ref)}")
    tree = unhex(f("tree", str))
    key, nonce = unhex(ref["key"]), unhex(ref["nonce"])
    if len(key) != 32 or len(nonce) != 12 or type(ref["size"]) is not int:
        raise Mismatch("ratchetTree key, nonce or size")
    padded = tree + bytes(bucket(len(tree)) - len(tree))
    ciphertext = AESGCM(key).encrypt(nonce, padded, None)
    expect("treeCiphertext", ciphertext.hex(), f("treeCiphertext", str))
    expect("ratchetTree.digest", hashlib.sha256(ciphertext).hexdigest(), ref["digest"])
    expect("ratchetTree.size", len(tree), ref["size"])
    expect("ratchetTree.cid", cid_text(0x55, ciphertext), ref["cid"])
    return {
        "cid": ref["cid"],
        "did": ref["did"],
        "key": key,
        "size": ref["size"],
        "nonce": nonce,
        "digest": unhex(ref["digest"]),
    }


def check_content(f):
    content = f("content", dict)
    encoded = dag_cbor(data_model(content))
    expect("dagCbor", encoded.hex(), f("dagCbor", str))
    body = content.get("body", {})
    if body.get("$type") == "chat.mls.content#attachment":
        file = unhex(f("file", str))
        padded = file + bytes(bucket(len(file)) - len(file))
        key, nonce = unb64(body["key"]["$bytes"]), unb64(body["nonce"]["$bytes"])
        expect("cipher", body["cipher"], "aes-256-gcm")
        ciphertext = AESGCM(key).encrypt(nonce, padded, None)
        expect("ciphertext", ciphertext.hex(), f("ciphertext", str))
        expect("digest", b64(hashlib.sha256(ciphertext).digest()), body["digest"]["$bytes"])
        expect("size", len(file), body["size"])
        expect("location.cid", cid_text(0x55, ciphertext), body["location"]["cid"]["$link"])


def check_padding(f):
    if f.has("message"):
        message = unhex(f("message", str))
        payload = message + bytes(bucket(len(message)) - len(message))
        expect("payload", payload.hex(), f("payload", str))
        return
    length = f("length", int)
    cap = f.opt("maxEnvelopeBytes", int)
    padded = bucket(length) if cap is None else max(min(bucket(length), cap), length)
    expect("paddedLength", padded, f("paddedLength", int))
    expect("paddingBytes", padded - length, f("paddingBytes", int))


def check_reentry(f):
    """A re-entry request (spec §11.17): the signed body, the signature, the plaintext, the
    sealed and padded item as the recipient opens it; and an epoch tag."""
    expect("cipherSuite", f("cipherSuite", int), 1)
    info = f("info", str)
    expect("info", info, "chat.mls reentry v1")
    sk_r, pk_r = derive_key_pair(unhex(f("recipientIkm", str)))
    expect("recipientPrivateKey", sk_r.hex(), f("recipientPrivateKey", str))
    expect("recipientPublicKey", pk_r.hex(), f("recipientPublicKey", str))
    seed = unhex(f("signerSeed", str))
    expect("signerPublicKey", ed25519_public(seed).hex(), f("signerPublicKey", str))
    body = {
        "createdAt": f("createdAt", int),
        "deviceId": f("deviceId", str),
        "did": f("did", str),
        "keyPackage": f("keyPackage", str),
        "keyPackageRef": unhex(f("keyPackageRef", str)),
        "version": 1,
    }
    if f.has("group"):
        group = f("group", dict)
        if set(group) != {"id", "ds", "mailbox"}:
            raise Mismatch("group: fields")
        mailbox_id(group["mailbox"])
        body["group"] = {"ds": group["ds"], "id": unhex(group["id"]), "mailbox": group["mailbox"]}
    signed = b"chat.mls reentry signature v1" + dag_cbor(body)
    expect("signedBytes", signed.hex(), f("signedBytes", str))
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signed)
    expect("signature", signature.hex(), f("signature", str))
    plaintext = dag_cbor(dict(body, sig=signature))
    expect("plaintext", plaintext.hex(), f("plaintext", str))
    enc, ct = hpke_seal_base(pk_r, unhex(f("ephemeralIkm", str)), info.encode(), b"", plaintext)
    expect("enc", enc.hex(), f("enc", str))
    expect("ciphertext", ct.hex(), f("ciphertext", str))
    sealed = b"\x02" + len(enc).to_bytes(2, "big") + enc + len(ct).to_bytes(4, "big") + ct
    expect("sealed", sealed.hex(), f("sealed", str))
    payload = sealed + bytes(bucket(len(sealed)) - len(sealed))
    expect("payload", payload.hex(), f("payload", str))
    # The recipient's side: layout, padding, open with the init key, check the signature.
    given = unhex(f("payload", str))
    n = int.from_bytes(given[1:3], "big")
    m = int.from_bytes(given[3 + n : 7 + n], "big")
    if given[0] != 2 or any(given[7 + n + m :]):
        raise Mismatch("sealed layout or padding")
    opened = hpke_open_base(sk_r, given[3 : 3 + n], info.encode(), b"", given[7 + n : 7 + n + m])
    expect("opened plaintext", opened, plaintext)
    Ed25519PublicKey.from_public_bytes(ed25519_public(seed)).verify(signature, signed)
    authenticator = unhex(f("epochAuthenticator", str))
    tag = hashlib.sha256(b"chat.mls epoch tag v1" + authenticator).digest()[:16]
    expect("epochTag", tag.hex(), f("epochTag", str))
    expect("authenticatedData", (b"\x01" + tag).hex(), f("authenticatedData", str))
def check_device_binding(f):
    expect("extensionType", f("extensionType", int), 0xF0A9)
    version = f("version", int)
    expect("version", version, 1)
    label = f("label", str)
    expect("label", label, "chat.mls device binding v1")
    seed = unhex(f("deviceKeySeed", str))
    expect("deviceKey", ed25519_public(seed).hex(), f("deviceKey", str))
    did = f("did", str).encode()
    device_id = f("deviceId", str).encode()
    suite = f("cipherSuite", int)
    expect("cipherSuite", suite, 1)
    leaf_key = unhex(f("leafSignatureKey", str))
    signed = (
        vl(label.encode())
        + vl(did)
        + vl(device_id)
        + suite.to_bytes(2, "big")
        + vl(leaf_key)
    )
    expect("signatureInput", signed.hex(), f("signatureInput", str))
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(signed)
    expect("signature", signature.hex(), f("signature", str))
    proof = unhex(f("proof", str))
    binding = bytes([version]) + vl(device_id) + vl(proof) + vl(signature)
    expect("binding", binding.hex(), f("binding", str))
    extension = 0xF0A9.to_bytes(2, "big") + vl(binding)
    expect("extension", extension.hex(), f("extension", str))


TOPICS = {
    "records.json": check_records,
    "group-data-extension.json": check_group_data,
    "mailbox-key.json": check_mailbox_key,
    "request-signature.json": check_signature,
    "envelopes.json": check_envelope,
    "sealed-welcome.json": check_welcome,
    "content.json": check_content,
    "padding.json": check_padding,
    "reentry.json": check_reentry,
    "device-binding.json": check_device_binding,
    "xwing-sealed-welcome.json": check_xwing_welcome,
    "xwing-mailbox-key.json": check_xwing_mailbox_key,
}


def check_vector(checker, vector):
    """None if the vector passes, else why it fails."""
    try:
        f = Fields(vector)
        checker(f)
        f.done()
        return None
    except Mismatch as e:
        return str(e)
    except Exception as e:  # malformed input of any kind is a failure, never a pass
        return f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------- mutations


def mutate_char(c):
    if c in HEX:
        return HEX[(HEX.index(c) + 1) % 16]
    if "a" <= c <= "z":
        return chr((ord(c) - ord("a") + 1) % 26 + ord("a"))
    if "A" <= c <= "Z":
        return chr((ord(c) - ord("A") + 1) % 26 + ord("A"))
    if "0" <= c <= "9":
        return str((int(c) + 1) % 10)
    return "x" if c != "x" else "y"


def mutations(value):
    """Every single change of `value`: (description, mutated value)."""
    if isinstance(value, bool):
        yield "flipped", not value
    elif isinstance(value, int):
        yield "+1", value + 1
        yield "-1", value - 1
    elif isinstance(value, str):
        for i, c in enumerate(value):
            yield f"char {i}", value[:i] + mutate_char(c) + value[i + 1 :]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for what, m in mutations(item):
                yield f"[{i}] {what}", value[:i] + [m] + value[i + 1 :]
    elif isinstance(value, dict):
        for key in value:
            for what, m in mutations(value[key]):
                changed = dict(value)
                changed[key] = m
                yield f".{key} {what}", changed
            renamed = {(k + "_" if k == key else k): v for k, v in value.items()}
            yield f"key {key!r} renamed", renamed


def self_test(checker, vector):
    """Mutates every field except `name`; returns (count, mutations that still passed)."""
    count, missed = 0, []
    for key in vector:
        if key == "name":
            continue
        for what, m in mutations(vector[key]):
            changed = copy.copy(vector)
            changed[key] = m
            count += 1
            if check_vector(checker, changed) is None:
                missed.append(f"{key} {what}")
        count += 1
        renamed = {(k + "_" if k == key else k): v for k, v in vector.items()}
        if check_vector(checker, renamed) is None:
            missed.append(f"field {key!r} renamed")
    return count, missed


# ---------------------------------------------------------------------------- main


def main(argv):
    args = [a for a in argv if a != "--self-test"]
    run_self_test = "--self-test" in argv
    directory = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    files = sorted(n for n in os.listdir(directory) if n.endswith(".json"))
    passed = failed = mutated = 0
    unknown = [n for n in files if n not in TOPICS]
    missing = [n for n in TOPICS if n not in files]
    for name in unknown:
        print(f"FAIL {name}: no check for this file")
        failed += 1
    for name in missing:
        print(f"FAIL {name}: missing")
        failed += 1
    for name in files:
        if name not in TOPICS:
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as fh:
            doc = json.load(fh)
        vectors = doc.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            print(f"FAIL {name}: no vectors")
            failed += 1
            continue
        for vector in vectors:
            label = f"{name}: {vector.get('name', '?')}"
            error = check_vector(TOPICS[name], vector)
            if error is not None:
                print(f"FAIL {label}: {error}")
                failed += 1
                continue
            passed += 1
            if run_self_test:
                count, missed = self_test(TOPICS[name], vector)
                mutated += count
                for m in missed:
                    print(f"FAIL {label}: mutation not detected: {m}")
                failed += len(missed)
        print(f"ok {name} ({len(vectors)} vectors)")
    if run_self_test:
        print(f"mutation self-test: {mutated} mutations")
    print(f"vectors: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
