//! The bot account's login: matrix-sdk's SQLite state and crypto stores in
//! `store_path`, and the login (user, device, access token) kept next to
//! them in `session.json` (mode 0600) so a restart is the same device with
//! the same keys. The first start logs in with the password (or adopts a
//! configured access token) and, given a password, sets up cross-signing
//! so the bot's device is signed by its own identity.

use std::path::{Path, PathBuf};

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use serde::{Deserialize, Serialize};

use crate::config::MatrixBotConfig;
use crate::secret::Secret;

use super::BotError;

/// The saved login, next to the stores it belongs to.
#[derive(Serialize, Deserialize)]
struct SavedSession {
    user_id: OwnedUserId,
    device_id: OwnedDeviceId,
    access_token: Secret,
}

fn session_file(store: &Path) -> PathBuf {
    store.join("session.json")
}

/// A logged-in client for the bot account.
pub(super) async fn client(
    homeserver_url: &str,
    config: &MatrixBotConfig,
) -> Result<Client, BotError> {
    create_private_dir(&config.store_path)?;
    let passphrase = config.store_passphrase.as_ref().map(Secret::expose);
    let client = Client::builder()
        .homeserver_url(homeserver_url)
        .sqlite_store(&config.store_path, passphrase)
        .build()
        .await
        .map_err(|e| BotError::Sdk(format!("cannot open the bot's store: {e}")))?;
    let file = session_file(&config.store_path);
    if file.exists() {
        let text = std::fs::read_to_string(&file).map_err(|e| BotError::io(&file, e))?;
        let saved: SavedSession = serde_json::from_str(&text)
            .map_err(|e| BotError::Sdk(format!("{} is damaged: {e}", file.display())))?;
        if saved.user_id.as_str() != config.user_id {
            return Err(BotError::Sdk(format!(
                "the store in {} belongs to {}, not {}; use another store_path",
                config.store_path.display(),
                saved.user_id,
                config.user_id
            )));
        }
        restore(&client, saved).await?;
        tracing::info!(device = %client.device_id().map(|d| d.to_string()).unwrap_or_default(), "Matrix bot: login restored");
        return Ok(client);
    }
    let saved = if let Some(token) = config
        .access_token()
        .map_err(|e| BotError::Sdk(format!("cannot read matrix.bot.access_token_file: {e}")))?
    {
        adopt_token(homeserver_url, token).await?
    } else {
        let password = password(config)?;
        let response = client
            .matrix_auth()
            .login_username(&config.user_id, password.expose())
            .initial_device_display_name(&config.device_name)
            .send()
            .await
            // The error names the homeserver's reason, never the password.
            .map_err(|e| BotError::Sdk(format!("login as {} failed: {e}", config.user_id)))?;
        SavedSession {
            user_id: response.user_id,
            device_id: response.device_id,
            access_token: Secret::new(response.access_token),
        }
    };
    write_private(&file, &serde_json::to_string(&saved).unwrap_or_default())?;
    if client.session_meta().is_none() {
        restore(&client, saved).await?;
    }
    tracing::info!(device = %client.device_id().map(|d| d.to_string()).unwrap_or_default(), "Matrix bot: logged in");
    Ok(client)
}

fn password(config: &MatrixBotConfig) -> Result<Secret, BotError> {
    config
        .password()
        .map_err(|e| BotError::Sdk(format!("cannot read matrix.bot.password_file: {e}")))?
        .ok_or_else(|| BotError::Sdk("matrix.bot has no password or access token".to_owned()))
}

async fn restore(client: &Client, saved: SavedSession) -> Result<(), BotError> {
    let session = MatrixSession {
        meta: SessionMeta {
            user_id: saved.user_id,
            device_id: saved.device_id,
        },
        tokens: SessionTokens {
            access_token: saved.access_token.expose().to_owned(),
            refresh_token: None,
        },
    };
    client
        .restore_session(session)
        .await
        .map_err(|e| BotError::Sdk(format!("cannot restore the bot's login: {e}")))
}

/// A configured access token: its user and device, from `whoami`.
async fn adopt_token(homeserver_url: &str, token: Secret) -> Result<SavedSession, BotError> {
    #[derive(Deserialize)]
    struct WhoAmI {
        user_id: OwnedUserId,
        device_id: Option<OwnedDeviceId>,
    }
    let url = format!(
        "{}/_matrix/client/v3/account/whoami",
        homeserver_url.trim_end_matches('/')
    );
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| BotError::Sdk(format!("cannot reach the homeserver: {e}")))?;
    if !response.status().is_success() {
        return Err(BotError::Sdk(format!(
            "the homeserver refused matrix.bot.access_token ({})",
            response.status()
        )));
    }
    let who: WhoAmI = response
        .json()
        .await
        .map_err(|e| BotError::Sdk(format!("unexpected whoami answer: {e}")))?;
    let device_id = who.device_id.ok_or_else(|| {
        BotError::Sdk("matrix.bot.access_token has no device; log in with a password".to_owned())
    })?;
    Ok(SavedSession {
        user_id: who.user_id,
        device_id,
        access_token: token,
    })
}

/// Creates the cross-signing identity of the bot once (it needs the
/// password for the homeserver's interactive auth) and signs the bot's
/// device with it.
pub(super) async fn bootstrap_cross_signing(client: &Client, config: &MatrixBotConfig) {
    let encryption = client.encryption();
    let Err(e) = encryption.bootstrap_cross_signing_if_needed(None).await else {
        return;
    };
    let Some(uiaa) = e.as_uiaa_response() else {
        tracing::warn!(error = %e, "Matrix bot: cannot set up cross-signing");
        return;
    };
    let Ok(Some(password)) = config.password() else {
        tracing::warn!(
            "Matrix bot: cross-signing needs the bot's password (matrix.bot.password); \
             the bot's device stays unsigned"
        );
        return;
    };
    let mut auth = uiaa::Password::new(
        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(config.user_id.clone())),
        password.expose().to_owned(),
    );
    auth.session = uiaa.session.clone();
    match encryption
        .bootstrap_cross_signing(Some(uiaa::AuthData::Password(auth)))
        .await
    {
        Ok(()) => tracing::info!("Matrix bot: cross-signing set up"),
        Err(e) => tracing::warn!(error = %e, "Matrix bot: cannot set up cross-signing"),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), BotError> {
    std::fs::create_dir_all(dir).map_err(|e| BotError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| BotError::io(dir, e))?;
    }
    Ok(())
}

fn write_private(file: &Path, text: &str) -> Result<(), BotError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(file).map_err(|e| BotError::io(file, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| BotError::io(file, e))
}
