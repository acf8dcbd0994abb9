//! Fortnight: a self-hosted newsletter backend for a publication with a steady rhythm.

pub mod app;
pub mod bounces;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod inbox;
pub mod mail;
pub mod outbox;
pub mod render;
pub mod schedule;
pub mod store;
pub mod telemetry;
pub mod transfer;
pub mod web;
