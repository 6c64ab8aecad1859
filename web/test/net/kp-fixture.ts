// A real MLS KeyPackage (ts-mls, suite 0x0001, BasicCredential = the DID) for the record tests:
// structurally valid and parseable, but built with ts-mls's default capabilities, not atmls's
// group configuration (that is the MLS layer's job): enough to publish, prove and read back.
import {
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";

export async function realKeyPackage(did: string): Promise<{ bytes: Uint8Array; ref: Uint8Array }> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
  const { publicPackage } = await generateKeyPackage(
    { credentialType: "basic", identity: new TextEncoder().encode(did) },
    defaultCapabilities(),
    defaultLifetime,
    [],
    cs,
  );
  const bytes = encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: publicPackage });
  return { bytes, ref: await makeKeyPackageRef(publicPackage, cs.hash) };
}
