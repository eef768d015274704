//! The load generator's parts: settings, tasks, its own metrics, reports.
//! The binary (`main.rs`) wires them to goose.
pub mod metrics;
pub mod report;
pub mod settings;
pub mod tasks;
