//! Custom key stores (external key stores): their events (stream `cks/{id}`) and the snapshot the
//! read model keeps of each. The proxy credential's secret is never here: it is sealed under the
//! root key in the keystore (`credential_owner`), and events name only its version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use trent_store::NewEvent;

/// AWS's connection states of a custom key store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionState {
    /// Not connected (the state of a new store).
    Disconnected,
    /// Connected: its keys can be created and used.
    Connected,
    /// The last connection attempt failed (`connection_error` says why).
    Failed,
}

impl ConnectionState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "DISCONNECTED",
            Self::Connected => "CONNECTED",
            Self::Failed => "FAILED",
        }
    }
}

/// A custom key store as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomKeyStore {
    /// `cks-` and 17 hex digits.
    pub id: String,
    /// The owning account.
    pub account: String,
    /// The region.
    pub region: String,
    /// `CustomKeyStoreName`, unique in the account and region.
    pub name: String,
    /// `XksProxyUriEndpoint`.
    pub uri_endpoint: String,
    /// `XksProxyUriPath`.
    pub uri_path: String,
    /// `XksProxyConnectivity` (`PUBLIC_ENDPOINT`).
    pub connectivity: String,
    /// The proxy credential's access key id (the secret is sealed in the keystore).
    pub access_key_id: String,
    /// The version under which the credential's secret is sealed.
    pub credential_version: i32,
    /// The connection state.
    pub state: ConnectionState,
    /// `ConnectionErrorCode`, while `Failed`.
    pub connection_error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The stream version of its last event.
    pub stream_version: i64,
}

impl CustomKeyStore {
    /// Its event stream.
    pub fn stream(&self) -> String {
        CustomKeyStoreEvent::stream_for(&self.id)
    }

    /// Under which id the credential's sealed secret is kept in the keystore.
    pub fn credential_owner(&self) -> String {
        credential_owner(&self.id)
    }
}

/// The keystore id of a custom key store's sealed proxy credential.
pub fn credential_owner(store_id: &str) -> String {
    format!("cks/{store_id}")
}

/// The events of a custom key store's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CustomKeyStoreEvent {
    /// The store was created (disconnected).
    CustomKeyStoreCreated {
        /// Payload schema version.
        schema: u32,
        /// The store id.
        id: String,
        /// The owning account.
        account: String,
        /// The region.
        region: String,
        /// Its name.
        name: String,
        /// `XksProxyUriEndpoint`.
        uri_endpoint: String,
        /// `XksProxyUriPath`.
        uri_path: String,
        /// `XksProxyConnectivity`.
        connectivity: String,
        /// The proxy credential's access key id.
        access_key_id: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Settings changed (each field: the new value, or None for unchanged).
    CustomKeyStoreUpdated {
        /// Payload schema version.
        schema: u32,
        /// A new name.
        name: Option<String>,
        /// A new endpoint.
        uri_endpoint: Option<String>,
        /// A new path.
        uri_path: Option<String>,
        /// A new connectivity.
        connectivity: Option<String>,
        /// A new credential's access key id (its secret sealed as `credential_version`).
        access_key_id: Option<String>,
        /// The version the new credential's secret is sealed under.
        credential_version: Option<i32>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A connection attempt ended: connected, or failed with AWS's `ConnectionErrorCode`.
    CustomKeyStoreConnected {
        /// Payload schema version.
        schema: u32,
        /// None when connected; the error code when the attempt failed.
        error: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The store was disconnected.
    CustomKeyStoreDisconnected {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The store was deleted.
    CustomKeyStoreDeleted {
        /// Payload schema version.
        schema: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl CustomKeyStoreEvent {
    /// The stream of a store's events.
    pub fn stream_for(store_id: &str) -> String {
        format!("cks/{store_id}")
    }

    /// The event type name stored beside the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::CustomKeyStoreCreated { .. } => "CustomKeyStoreCreated",
            Self::CustomKeyStoreUpdated { .. } => "CustomKeyStoreUpdated",
            Self::CustomKeyStoreConnected { .. } => "CustomKeyStoreConnected",
            Self::CustomKeyStoreDisconnected { .. } => "CustomKeyStoreDisconnected",
            Self::CustomKeyStoreDeleted { .. } => "CustomKeyStoreDeleted",
        }
    }

    /// Encode for the store.
    pub fn to_new_event(&self) -> Result<NewEvent, serde_json::Error> {
        Ok(NewEvent {
            event_type: self.type_name().to_string(),
            payload: serde_json::to_value(self)?,
        })
    }
}

/// Apply one event to the store map entry (`entry` is None before creation; None after deletion).
pub fn apply(
    entry: Option<CustomKeyStore>,
    event: CustomKeyStoreEvent,
    version: i64,
) -> Result<Option<CustomKeyStore>, String> {
    use CustomKeyStoreEvent::*;
    let mut store = match (entry, event) {
        (
            None,
            CustomKeyStoreCreated {
                id,
                account,
                region,
                name,
                uri_endpoint,
                uri_path,
                connectivity,
                access_key_id,
                at,
                ..
            },
        ) => CustomKeyStore {
            id,
            account,
            region,
            name,
            uri_endpoint,
            uri_path,
            connectivity,
            access_key_id,
            credential_version: 1,
            state: ConnectionState::Disconnected,
            connection_error: None,
            created_at: at,
            stream_version: version,
        },
        (Some(_), CustomKeyStoreCreated { id, .. }) => {
            return Err(format!("custom key store {id} created twice"))
        }
        (None, _) => return Err("event on a custom key store that does not exist".into()),
        (Some(_), CustomKeyStoreDeleted { .. }) => return Ok(None),
        (
            Some(mut s),
            CustomKeyStoreUpdated {
                name,
                uri_endpoint,
                uri_path,
                connectivity,
                access_key_id,
                credential_version,
                ..
            },
        ) => {
            s.name = name.unwrap_or(s.name);
            s.uri_endpoint = uri_endpoint.unwrap_or(s.uri_endpoint);
            s.uri_path = uri_path.unwrap_or(s.uri_path);
            s.connectivity = connectivity.unwrap_or(s.connectivity);
            s.access_key_id = access_key_id.unwrap_or(s.access_key_id);
            s.credential_version = credential_version.unwrap_or(s.credential_version);
            s
        }
        (Some(mut s), CustomKeyStoreConnected { error, .. }) => {
            s.state = if error.is_some() {
                ConnectionState::Failed
            } else {
                ConnectionState::Connected
            };
            s.connection_error = error;
            s
        }
        (Some(mut s), CustomKeyStoreDisconnected { .. }) => {
            s.state = ConnectionState::Disconnected;
            s.connection_error = None;
            s
        }
    };
    store.stream_version = version;
    Ok(Some(store))
}
