//! `:save`: download the files of a conversation's newest message that has any, into a folder
//! (default: the user's Downloads). Email attachments are fetched again from the IMAP server
//! (the message's folder and UID, or its Message-ID after a UIDVALIDITY change) and cut out of
//! the MIME; Telegram files come through getFile. Runs off the UI task; nothing is written
//! half: each file goes to `NAME.part` first and is renamed into place, never over an existing
//! file (`invoice (1).pdf`).

use crate::channels::email::Account;
use crate::channels::email::net::{next_within, timed};
use crate::model::{Channel, ConversationId};
use crate::store::{AttachmentSource, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `:save` needs from the configuration (`config::Config` implements it).
pub trait SaveConfig: Sync {
    /// The data directory: the store, and the fallback folder for files.
    fn data_dir(&self) -> &Path;
    fn email_accounts(&self) -> &[crate::channels::email::EmailAccount];
    fn telegram(&self) -> Option<&crate::channels::telegram::TelegramConfig>;
    fn ingest_settings(&self) -> crate::ingest::Settings;
    /// The WhatsApp number to download media through (None: not configured).
    fn whatsapp(&self) -> Option<&crate::channels::whatsapp::WhatsAppConfig> {
        None
    }
}

impl<T: SaveConfig + Send + ?Sized> SaveConfig for Arc<T> {
    fn data_dir(&self) -> &Path {
        (**self).data_dir()
    }
    fn email_accounts(&self) -> &[crate::channels::email::EmailAccount] {
        (**self).email_accounts()
    }
    fn telegram(&self) -> Option<&crate::channels::telegram::TelegramConfig> {
        (**self).telegram()
    }
    fn ingest_settings(&self) -> crate::ingest::Settings {
        (**self).ingest_settings()
    }
    fn whatsapp(&self) -> Option<&crate::channels::whatsapp::WhatsAppConfig> {
        (**self).whatsapp()
    }
}

/// Where files go when `:save` names no folder.
pub fn default_dir(config: &impl SaveConfig) -> PathBuf {
    crate::files::default_dir(&config.data_dir().join("attachments"))
}

/// Save the attachments of the newest message with attachments in `conversation`; returns one
/// line for the status bar ("saved invoice.pdf (120 KB) to /home/ann/Downloads"). The whole
/// path in one process (tests, tools); the TUI asks the server for [`fetch`]'s bytes instead.
pub async fn save(
    config: &impl SaveConfig,
    conversation: ConversationId,
    dir: Option<PathBuf>,
) -> Result<String, String> {
    let path = config.data_dir().join(crate::store::DB_FILE);
    let source = tokio::task::spawn_blocking(move || {
        Store::open(&path)
            .and_then(|s| s.newest_attachment_message(conversation))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??
    .ok_or_else(|| format!("no message with attachments in #{conversation}"))?;
    let files = fetch(config, &source).await?;
    let dir = dir.unwrap_or_else(|| default_dir(config));
    crate::files::save_all(&dir, &files).await
}

/// The files of a message with attachments, fetched again from where they live (the IMAP
/// server, Telegram's getFile): (file name as sent, bytes).
pub async fn fetch(
    config: &impl SaveConfig,
    source: &AttachmentSource,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    match source.channel {
        Channel::Email => fetch_email(config, source).await,
        Channel::Telegram => fetch_telegram(config, source).await,
        Channel::WebChat => Err("web chat messages carry no files".into()),
        Channel::WhatsApp => fetch_whatsapp(config, source).await,
        other => Err(format!("{} files cannot be fetched yet", other.label())),
    }
}

async fn fetch_email(
    config: &impl SaveConfig,
    source: &AttachmentSource,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let accounts = config.email_accounts();
    let cfg = accounts
        .iter()
        .find(|a| a.name == source.account)
        .or_else(|| (accounts.len() == 1).then(|| &accounts[0]))
        .ok_or_else(|| {
            format!(
                "the message came through email account '{}', which is not configured",
                source.account
            )
        })?;
    let imap = source.meta.get("imap").ok_or_else(|| {
        "this message was imported from a file: its attachments are not on a server".to_string()
    })?;
    let folder = imap["folder"].as_str().unwrap_or("INBOX").to_string();
    let uidvalidity = imap["uidvalidity"].as_u64();
    let uid = imap["uid"].as_u64();
    let account = Account::new(cfg.clone(), config.ingest_settings());
    let raw = fetch_raw(
        &account,
        &folder,
        uidvalidity,
        uid,
        source.external_id.as_deref(),
    )
    .await
    .map_err(|e| format!("email {}: {e}", cfg.name))?;
    let message = mail_parser::MessageParser::new()
        .parse(&raw)
        .ok_or_else(|| "the message on the server cannot be parsed".to_string())?;
    let wanted: Vec<(u64, String)> = source
        .meta
        .get("attachments")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x["part"].as_u64()?, x["name"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut saved = Vec::new();
    for (part, name) in wanted {
        let Some(p) = message.parts.get(part as usize) else {
            continue;
        };
        let bytes: Vec<u8> = match &p.body {
            mail_parser::PartType::Message(m) => m.raw_message().to_vec(),
            _ => p.contents().to_vec(),
        };
        saved.push((name, bytes));
    }
    if saved.is_empty() {
        return Err("the attachments are no longer in the message on the server".into());
    }
    Ok(saved)
}

/// The raw message: by UID while UIDVALIDITY is unchanged, else by Message-ID.
async fn fetch_raw(
    account: &Arc<Account>,
    folder: &str,
    uidvalidity: Option<u64>,
    uid: Option<u64>,
    message_id: Option<&str>,
) -> Result<Vec<u8>, crate::channels::email::NetError> {
    use crate::channels::email::NetError;
    let limit = account.config.timeout;
    let mut sess = account.login().await?;
    let mb = timed(limit, "EXAMINE", sess.examine(folder)).await?;
    let uid = match (mb.uid_validity.map(u64::from), uidvalidity, uid) {
        (Some(now), Some(then), Some(uid)) if now == then => uid as u32,
        _ => {
            let id = message_id
                .filter(|m| !m.contains(['"', '\\', '\r', '\n']))
                .ok_or_else(|| {
                    NetError::Protocol("the message has no Message-ID to find it by".into())
                })?;
            let hits = timed(
                limit,
                "UID SEARCH",
                sess.uid_search(format!("HEADER Message-ID \"<{id}>\"")),
            )
            .await?;
            hits.into_iter().max().ok_or_else(|| {
                NetError::Protocol(format!("the message is no longer in {folder}"))
            })?
        }
    };
    let raw = {
        let mut stream = timed(
            limit,
            "UID FETCH",
            sess.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])"),
        )
        .await?;
        let mut raw = None;
        while let Some(item) = next_within(&mut stream, limit, "UID FETCH").await? {
            let f = item?;
            if f.uid == Some(uid)
                && let Some(b) = f.body()
            {
                raw = Some(b.to_vec());
            }
        }
        raw
    };
    let _ = tokio::time::timeout(limit, sess.logout()).await;
    raw.ok_or_else(|| NetError::Protocol(format!("the message is no longer in {folder}")))
}

async fn fetch_telegram(
    config: &impl SaveConfig,
    source: &AttachmentSource,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let tg = config
        .telegram()
        .ok_or_else(|| "no Telegram bot configured to download the file through".to_string())?;
    let a = &source.meta["attachment"];
    let file_id = a["file_id"]
        .as_str()
        .ok_or_else(|| "the message keeps no Telegram file id".to_string())?;
    let name = a["file_name"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("telegram-{}", a["kind"].as_str().unwrap_or("file")));
    let bot = crate::channels::telegram::Telegram::new(tg.clone(), config.ingest_settings());
    let bytes = bot.fetch_file(file_id).await.map_err(|e| e.to_string())?;
    Ok(vec![(name, bytes)])
}

/// A WhatsApp media file: its id from the message's meta, fetched through the Graph API.
async fn fetch_whatsapp(
    config: &impl SaveConfig,
    source: &AttachmentSource,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let wa = config.whatsapp().ok_or_else(|| {
        "no [whatsapp] number configured to download the file through".to_string()
    })?;
    let a = &source.meta["attachment"];
    let media_id = a["media_id"]
        .as_str()
        .ok_or_else(|| "the message keeps no WhatsApp media id".to_string())?;
    let name = a["file_name"]
        .as_str()
        .map(crate::sanitize::file_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            let kind = a["kind"].as_str().unwrap_or("file");
            let ext = a["mime_type"]
                .as_str()
                .and_then(extension_of)
                .map(|e| format!(".{e}"))
                .unwrap_or_default();
            crate::sanitize::file_name(&format!("whatsapp-{kind}-{media_id}{ext}"))
        });
    let bytes = crate::channels::whatsapp::WhatsApp::new(wa.clone())
        .fetch_media(media_id)
        .await?;
    Ok(vec![(name, bytes)])
}

/// A file extension for the media types WhatsApp sends.
fn extension_of(mime: &str) -> Option<&'static str> {
    let base = mime.split(';').next().unwrap_or("").trim();
    Some(match base {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn web_chat_has_no_files() {
        let source = AttachmentSource {
            message: crate::model::MessageId(1),
            channel: Channel::WebChat,
            account: String::new(),
            external_id: None,
            meta: serde_json::Value::Null,
        };
        struct NoChannels(PathBuf);
        impl SaveConfig for NoChannels {
            fn data_dir(&self) -> &Path {
                &self.0
            }
            fn email_accounts(&self) -> &[crate::channels::email::EmailAccount] {
                &[]
            }
            fn telegram(&self) -> Option<&crate::channels::telegram::TelegramConfig> {
                None
            }
            fn ingest_settings(&self) -> crate::ingest::Settings {
                crate::ingest::Settings::default()
            }
        }
        let config = NoChannels(std::env::temp_dir());
        assert_eq!(
            fetch(&config, &source).await.unwrap_err(),
            "web chat messages carry no files"
        );
    }
}
