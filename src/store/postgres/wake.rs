//! `LISTEN/NOTIFY`: one dedicated connection listens on the outbox channel and rebroadcasts each
//! notification (the destination kind of a message that became due) to this daemon's workers, so an
//! enqueue in one daemon wakes the pushers of all. Losing a notification costs only latency: the
//! workers also poll. The listener reconnects after a second when its connection drops.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use super::queue::CHANNEL;
use crate::outbox::DestinationKind;

pub(super) struct Wake {
    tx: broadcast::Sender<DestinationKind>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Wake {
    pub(super) fn start(config: tokio_postgres::Config) -> Wake {
        let (tx, _) = broadcast::channel(256);
        let task = tokio::spawn(listen(config, tx.clone()));
        Wake { tx, task }
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<DestinationKind> {
        self.tx.subscribe()
    }
}

fn kind(payload: &str) -> Option<DestinationKind> {
    [
        DestinationKind::Salesforce,
        DestinationKind::Bank,
        DestinationKind::Email,
    ]
    .into_iter()
    .find(|k| k.tag().to_string() == payload)
}

async fn listen(config: tokio_postgres::Config, tx: broadcast::Sender<DestinationKind>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let statement = format!("LISTEN {CHANNEL}");
                let listen = client.batch_execute(&statement);
                // The connection must be driven for LISTEN to complete.
                let mut listen = std::pin::pin!(listen);
                let ok = loop {
                    tokio::select! {
                        r = &mut listen => break r.is_ok(),
                        m = messages.next() => if m.is_none() { break false },
                    }
                };
                if ok {
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message
                            && let Some(k) = kind(n.payload())
                        {
                            let _ = tx.send(k);
                        }
                    }
                }
                tracing::warn!("postgres LISTEN connection lost; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "postgres LISTEN connection failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
