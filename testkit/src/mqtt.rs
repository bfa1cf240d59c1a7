//! rumqttc client options for a harness broker.

use rumqttc::TlsConfiguration;

use crate::error::Result;
use crate::mosquitto::{Credentials, Mosquitto};

/// Which of the broker's listeners a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS, trusting only the harness CA, to `127.0.0.1` (the certificate names that address).
    Tls,
}

impl Mosquitto {
    /// MQTT 3.1.1 options for `client_id` logging in as `credentials` over `transport`.
    /// Other settings are rumqttc's defaults; adjust the returned value as the test needs.
    pub fn mqtt_options(
        &self,
        client_id: &str,
        credentials: &Credentials,
        transport: Transport,
    ) -> Result<rumqttc::MqttOptions> {
        let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", self.port(transport));
        options.set_credentials(&credentials.username, &credentials.password);
        if transport == Transport::Tls {
            options.set_transport(self.rumqttc_tls()?);
        }
        Ok(options)
    }

    /// MQTT 5 options, as [`mqtt_options`](Self::mqtt_options).
    pub fn mqtt5_options(
        &self,
        client_id: &str,
        credentials: &Credentials,
        transport: Transport,
    ) -> Result<rumqttc::v5::MqttOptions> {
        let mut options =
            rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", self.port(transport));
        options.set_credentials(&credentials.username, &credentials.password);
        if transport == Transport::Tls {
            options.set_transport(self.rumqttc_tls()?);
        }
        Ok(options)
    }

    /// The port of `transport`'s listener.
    pub fn port(&self, transport: Transport) -> u16 {
        match transport {
            Transport::Plain => self.plain_port(),
            Transport::Tls => self.tls_port(),
        }
    }

    fn rumqttc_tls(&self) -> Result<rumqttc::Transport> {
        let config = self.ca().client_config()?;
        Ok(rumqttc::Transport::tls_with_config(
            TlsConfiguration::Rustls(config),
        ))
    }
}
