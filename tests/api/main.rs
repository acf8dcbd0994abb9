//! Integration tests: the real app on port 0, a real SMTP server in-process, and a fresh
//! database per test, on SQLite and on PostgreSQL.

mod helpers;

mod admin;
mod admin_pages;
mod api_contract;
mod api_v1;
mod archive;
mod backup;
mod bad_input;
mod bounce_mailbox;
mod clicks;
mod delivery;
mod dkim;
mod durability;
mod health;
mod hostile_input;
mod issues;
mod links;
mod mail_outage;
mod manage;
mod operations;
mod outbound_webhooks;
mod rendering;
mod retention;
mod schedule;
mod shutdown;
mod signup;
mod subscription;
mod tags;
mod transfer;
mod webhooks;
mod welcome;
mod zones;
