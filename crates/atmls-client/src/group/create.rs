//! Group configuration and creation (the local MLS half; the device creates the mailbox
//! and sends the first commit).

use atmls_identity::Did;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

use super::binding::Binder;
use super::{GROUP_DATA_EXTENSION_TYPE, GroupData, PaddingPolicy, data_extension};
use crate::Error;
use crate::device::store::Provider;
use crate::keypackage::leaf_capabilities;

/// Past epochs whose secrets are kept to read late application messages.
pub(crate) const MAX_PAST_EPOCHS: usize = 4;
/// MLS padding inside PrivateMessage (bytes); the bucket padding is outside.
pub(crate) const MLS_PADDING: usize = 32;

/// The join configuration every member uses.
pub(crate) fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .padding_size(MLS_PADDING)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(32, 1000))
        .build()
}

/// Creates the MLS group at epoch 0 (the creator's leaf bound by `binder`, §11.16). Its group data names `ds` and an all-zero mailbox:
/// the mailbox is created next with the epoch-0 key, and the first commit sets its id.
pub(crate) fn create(
    provider: &Provider<'_>,
    signer: &SignatureKeyPair,
    did: &Did,
    ciphersuite: Ciphersuite,
    ds: &Did,
    name: &str,
    binder: &Binder,
) -> Result<MlsGroup, Error> {
    let data = GroupData {
        ds: ds.clone(),
        mailbox: [0; 32],
        name: name.to_owned(),
        description: String::new(),
        admins: vec![did.clone()],
        padding: PaddingPolicy::BucketsV1,
        message_lifetime: None,
    };
    let required = Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
        &[
            ExtensionType::Unknown(GROUP_DATA_EXTENSION_TYPE),
            ExtensionType::Unknown(super::DEVICE_BINDING_EXTENSION_TYPE),
        ],
        &[ProposalType::Custom(super::LEAF_PROOFS_PROPOSAL_TYPE)],
        &[CredentialType::Basic],
    ));
    let extensions = Extensions::from_vec(vec![required, data_extension(&data)])
        .map_err(|e| Error::mls("group extensions", e))?;
    let leaf_extensions = binder.leaf_extensions(ciphersuite, signer.public())?;
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .padding_size(MLS_PADDING)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(32, 1000))
        .capabilities(leaf_capabilities(ciphersuite))
        .with_group_context_extensions(extensions)
        .with_leaf_node_extensions(leaf_extensions)
        .map_err(|e| Error::mls("leaf extensions", e))?
        .build();
    let group_id: [u8; 32] = rand::random();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(did.as_str().as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    MlsGroup::new_with_group_id(
        provider,
        signer,
        &config,
        openmls::group::GroupId::from_slice(&group_id),
        credential,
    )
    .map_err(|e| Error::mls("create group", e))
}
