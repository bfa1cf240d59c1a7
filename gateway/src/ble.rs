//! BLE transport: the only module that talks to btleplug (BlueZ over D-Bus on Linux).
//!
//! [`Radio`] scans with service filters and connects; a connected device is a [`DeviceLink`],
//! the small trait the device sessions ([`crate::session`]) are written against, so they do not
//! depend on btleplug.
//!
//! Bonding: btleplug has no pairing API. Devices that need a bond (A&D and Omron BP monitors) are
//! paired once with `bluetoothctl` (see the README); an access error from such a device is
//! reported as [`BleError::NotBonded`] with that instruction.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use btleplug::api::{
    Central, CentralEvent, CharPropFlags, Characteristic, Manager as _, Peripheral as _,
    ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

/// How long connecting (including service discovery) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// BLE failures.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// No Bluetooth adapter (or no BlueZ on the system bus).
    #[error("no bluetooth adapter available")]
    NoAdapter,
    /// The device refused access: it needs a bond the gateway does not have.
    #[error(
        "device {address} refused access (not bonded); pair it once on the gateway: \
         `bluetoothctl pair {address}` then `bluetoothctl trust {address}`"
    )]
    NotBonded {
        /// The device.
        address: String,
    },
    /// Connecting took too long.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// A characteristic the session needs is not there.
    #[error("device {address} has no characteristic {uuid}")]
    MissingCharacteristic {
        /// The device.
        address: String,
        /// The characteristic.
        uuid: Uuid,
    },
    /// Anything else from the stack.
    #[error("bluetooth: {0}")]
    Stack(String),
}

impl BleError {
    fn from_btleplug(address: &str, e: btleplug::Error) -> Self {
        let text = e.to_string();
        // BlueZ reports a missing bond as one of these D-Bus errors / ATT errors.
        let auth = [
            "NotPermitted",
            "NotAuthorized",
            "Insufficient Authentication",
            "Insufficient Encryption",
            "AuthenticationFailed",
            "Not paired",
        ];
        if matches!(e, btleplug::Error::PermissionDenied) || auth.iter().any(|a| text.contains(a)) {
            Self::NotBonded {
                address: address.to_owned(),
            }
        } else {
            Self::Stack(text)
        }
    }
}

/// What an advertisement told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// The stack's handle for the device.
    pub id: PeripheralId,
    /// BLE address, upper case.
    pub address: String,
    /// Advertised name.
    pub name: Option<String>,
    /// Advertised services.
    pub services: Vec<u128>,
    /// Signal strength, dBm.
    pub rssi: Option<i16>,
}

/// One notification or indication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Characteristic it came from.
    pub characteristic: Uuid,
    /// The bytes.
    pub value: Vec<u8>,
}

/// What a characteristic allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CharCaps {
    /// Readable.
    pub read: bool,
    /// Writable (with or without response).
    pub write: bool,
    /// Notifies or indicates.
    pub notify: bool,
}

/// A connected device, as the sessions see it.
pub trait DeviceLink: Send {
    /// The device's address.
    fn address(&self) -> &str;
    /// Its characteristics and what each allows.
    fn characteristics(&self) -> BTreeMap<Uuid, CharCaps>;
    /// Enables notifications or indications.
    fn subscribe(
        &mut self,
        characteristic: Uuid,
    ) -> impl Future<Output = Result<(), BleError>> + Send;
    /// Writes (without response when the characteristic allows it).
    fn write(
        &mut self,
        characteristic: Uuid,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), BleError>> + Send;
    /// Reads.
    fn read(
        &mut self,
        characteristic: Uuid,
    ) -> impl Future<Output = Result<Vec<u8>, BleError>> + Send;
    /// The next notification, or `None` once the device has disconnected.
    fn next_notification(&mut self) -> impl Future<Output = Option<Notification>> + Send;
    /// Disconnects.
    fn disconnect(&mut self) -> impl Future<Output = ()> + Send;
}

/// The Bluetooth adapter.
#[derive(Debug, Clone)]
pub struct Radio {
    adapter: Adapter,
}

impl Radio {
    /// The first adapter of the system's Bluetooth stack.
    pub async fn first_adapter() -> Result<Self, BleError> {
        let manager = Manager::new()
            .await
            .map_err(|e| BleError::Stack(e.to_string()))?;
        let adapter = manager
            .adapters()
            .await
            .map_err(|e| BleError::Stack(e.to_string()))?
            .into_iter()
            .next()
            .ok_or(BleError::NoAdapter)?;
        Ok(Self { adapter })
    }

    /// Starts scanning for devices advertising any of `services`; yields each advertisement
    /// (first sighting and updates).
    pub async fn scan(
        &self,
        services: &[u128],
    ) -> Result<Pin<Box<dyn Stream<Item = Advertisement> + Send>>, BleError> {
        let events = self
            .adapter
            .events()
            .await
            .map_err(|e| BleError::Stack(e.to_string()))?;
        let filter = ScanFilter {
            services: services.iter().map(|s| Uuid::from_u128(*s)).collect(),
        };
        self.adapter
            .start_scan(filter)
            .await
            .map_err(|e| BleError::Stack(e.to_string()))?;
        let adapter = self.adapter.clone();
        Ok(Box::pin(events.filter_map(move |event| {
            let adapter = adapter.clone();
            async move {
                let id = match event {
                    CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => id,
                    _ => return None,
                };
                let peripheral = adapter.peripheral(&id).await.ok()?;
                let props = peripheral.properties().await.ok()??;
                Some(Advertisement {
                    id,
                    address: props.address.to_string().to_uppercase(),
                    name: props.local_name.or(props.advertisement_name),
                    services: props.services.iter().map(Uuid::as_u128).collect(),
                    rssi: props.rssi,
                })
            }
        })))
    }

    /// Connects and discovers services.
    pub async fn connect(
        &self,
        id: &PeripheralId,
        address: &str,
    ) -> Result<BtleplugLink, BleError> {
        let peripheral = self
            .adapter
            .peripheral(id)
            .await
            .map_err(|e| BleError::from_btleplug(address, e))?;
        let connect = async {
            if !peripheral.is_connected().await.unwrap_or(false) {
                peripheral.connect().await?;
            }
            peripheral.discover_services().await
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| BleError::ConnectTimeout(address.to_owned()))?
            .map_err(|e| BleError::from_btleplug(address, e))?;
        let chars = peripheral
            .characteristics()
            .into_iter()
            .map(|c| (c.uuid, c))
            .collect();
        let notifications = peripheral
            .notifications()
            .await
            .map_err(|e| BleError::from_btleplug(address, e))?;
        Ok(BtleplugLink {
            address: address.to_owned(),
            peripheral,
            chars,
            notifications,
        })
    }
}

/// A device connected through btleplug.
pub struct BtleplugLink {
    address: String,
    peripheral: Peripheral,
    chars: BTreeMap<Uuid, Characteristic>,
    notifications: Pin<Box<dyn Stream<Item = btleplug::api::ValueNotification> + Send>>,
}

impl std::fmt::Debug for BtleplugLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtleplugLink")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl BtleplugLink {
    fn char(&self, uuid: Uuid) -> Result<&Characteristic, BleError> {
        self.chars
            .get(&uuid)
            .ok_or_else(|| BleError::MissingCharacteristic {
                address: self.address.clone(),
                uuid,
            })
    }
}

impl DeviceLink for BtleplugLink {
    fn address(&self) -> &str {
        &self.address
    }

    fn characteristics(&self) -> BTreeMap<Uuid, CharCaps> {
        self.chars
            .iter()
            .map(|(u, c)| {
                let p = c.properties;
                (
                    *u,
                    CharCaps {
                        read: p.contains(CharPropFlags::READ),
                        write: p.intersects(
                            CharPropFlags::WRITE | CharPropFlags::WRITE_WITHOUT_RESPONSE,
                        ),
                        notify: p.intersects(CharPropFlags::NOTIFY | CharPropFlags::INDICATE),
                    },
                )
            })
            .collect()
    }

    async fn subscribe(&mut self, characteristic: Uuid) -> Result<(), BleError> {
        let c = self.char(characteristic)?.clone();
        self.peripheral
            .subscribe(&c)
            .await
            .map_err(|e| BleError::from_btleplug(&self.address, e))
    }

    async fn write(&mut self, characteristic: Uuid, bytes: &[u8]) -> Result<(), BleError> {
        let c = self.char(characteristic)?.clone();
        let kind = if c.properties.contains(CharPropFlags::WRITE_WITHOUT_RESPONSE) {
            WriteType::WithoutResponse
        } else {
            WriteType::WithResponse
        };
        self.peripheral
            .write(&c, bytes, kind)
            .await
            .map_err(|e| BleError::from_btleplug(&self.address, e))
    }

    async fn read(&mut self, characteristic: Uuid) -> Result<Vec<u8>, BleError> {
        let c = self.char(characteristic)?.clone();
        self.peripheral
            .read(&c)
            .await
            .map_err(|e| BleError::from_btleplug(&self.address, e))
    }

    async fn next_notification(&mut self) -> Option<Notification> {
        loop {
            // BlueZ ends the stream only when the adapter goes away; a disconnect is noticed by
            // checking the connection whenever the device has been quiet for a while.
            match tokio::time::timeout(Duration::from_secs(5), self.notifications.next()).await {
                Ok(Some(n)) => {
                    return Some(Notification {
                        characteristic: n.uuid,
                        value: n.value,
                    });
                }
                Ok(None) => return None,
                Err(_) => {
                    if !self.peripheral.is_connected().await.unwrap_or(false) {
                        return None;
                    }
                }
            }
        }
    }

    async fn disconnect(&mut self) {
        let _ = self.peripheral.disconnect().await;
    }
}
