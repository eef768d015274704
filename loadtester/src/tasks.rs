//! What a simulated user does: weighted tasks, each one GET request whose
//! outcome is recorded in this generator's own metrics.
use std::fmt;
use std::time::Instant;

use goose::prelude::*;

use crate::metrics::recorder;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `GET /`, the original's only task.
    Hello,
    /// `GET /hello/{name}`: one route template, many paths.
    Param,
    /// `GET /unknown/{n}` with a new `n` each time: shows that the service's
    /// series count does not grow with unknown paths.
    Unknown,
    /// `GET /delay/100`: slow requests for the latency panels.
    Slow,
}

impl Task {
    /// Every task, in a fixed order.
    pub const ALL: [Task; 4] = [Task::Hello, Task::Param, Task::Unknown, Task::Slow];

    /// The task's place in [`Task::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The task's name on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Task::Hello => "hello",
            Task::Param => "param",
            Task::Unknown => "unknown",
            Task::Slow => "slow",
        }
    }

    /// The request name in goose's report: one line per task, not per path.
    fn request_name(self) -> &'static str {
        match self {
            Task::Hello => "/",
            Task::Param => "/hello/{name}",
            Task::Unknown => "/unknown/{n}",
            Task::Slow => "/delay/100",
        }
    }

    fn path(self) -> String {
        const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
        match self {
            Task::Hello => "/".to_owned(),
            Task::Param => format!("/hello/{}", NAMES[fastrand::usize(..NAMES.len())]),
            Task::Unknown => format!("/unknown/{}", fastrand::u64(..)),
            Task::Slow => "/delay/100".to_owned(),
        }
    }
}

/// Tasks with their weights, such as `hello=8,param=1,unknown=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMix(Vec<(Task, usize)>);

impl TaskMix {
    /// Parses a mix; a task without `=weight` weighs 1.
    ///
    /// # Errors
    ///
    /// A message naming the accepted tasks, or the bad weight.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut mix = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, weight) = item.split_once('=').unwrap_or((item, "1"));
            let task = Task::ALL
                .into_iter()
                .find(|task| task.name() == name.trim())
                .ok_or_else(|| {
                    let names: Vec<_> = Task::ALL.iter().map(|t| t.name()).collect();
                    format!("unknown task `{name}`: the tasks are {}", names.join(", "))
                })?;
            let weight = weight
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| format!("the weight of `{name}` must be a whole number above 0"))?;
            if mix.iter().any(|(t, _)| *t == task) {
                return Err(format!("task `{name}` is given twice"));
            }
            mix.push((task, weight));
        }
        if mix.is_empty() {
            return Err("give at least one task, such as `hello`".to_owned());
        }
        Ok(Self(mix))
    }

    /// The goose scenario of one simulated user.
    ///
    /// # Errors
    ///
    /// A goose error if a weight is refused (it checks them too).
    pub fn scenario(&self) -> Result<Scenario, GooseError> {
        let mut scenario = scenario!("user");
        for &(task, weight) in &self.0 {
            let transaction = match task {
                Task::Hello => transaction!(hello),
                Task::Param => transaction!(param),
                Task::Unknown => transaction!(unknown),
                Task::Slow => transaction!(slow),
            };
            scenario = scenario
                .register_transaction(transaction.set_name(task.name()).set_weight(weight)?);
        }
        Ok(scenario)
    }
}

impl fmt::Display for TaskMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(t, w)| format!("{}={w}", t.name()))
            .collect();
        f.write_str(&items.join(","))
    }
}

async fn hello(user: &mut GooseUser) -> TransactionResult {
    request(user, Task::Hello).await
}

async fn param(user: &mut GooseUser) -> TransactionResult {
    request(user, Task::Param).await
}

async fn unknown(user: &mut GooseUser) -> TransactionResult {
    request(user, Task::Unknown).await
}

async fn slow(user: &mut GooseUser) -> TransactionResult {
    request(user, Task::Slow).await
}

/// Sends one request, reads the whole body (so the connection is reused)
/// and records the outcome. A failed status is the service's answer, not a
/// failure of the task: goose counts it as a failed request.
async fn request(user: &mut GooseUser, task: Task) -> TransactionResult {
    let started = Instant::now();
    // The user's base URL is parsed once; setting its path is cheap. Given a
    // path instead, goose parses it, joins it to the base and prints the
    // result, which reqwest parses again: a third of the loadtester's
    // instructions per request (callgrind, bench/loadtester-vs-wrk.sh).
    let mut url = user.base_url.clone();
    let path = format!(
        "{}{}",
        user.base_url.path().trim_end_matches('/'),
        task.path()
    );
    url.set_path(&path);
    let request = GooseRequest::builder()
        .method(GooseMethod::Get)
        .name(task.request_name())
        .set_request_builder(user.client.get(url))
        .build();
    let goose = user.request(request).await?;
    let status = goose.request.status_code;
    if let Ok(response) = goose.response {
        // A body that cannot be read is counted by its status all the same.
        let _ = response.bytes().await;
    }
    recorder().record(task, status, started.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_refuse_unknown_tasks() {
        let mix = TaskMix::parse("hello=8, param=1,unknown").expect("valid");
        assert_eq!(mix.to_string(), "hello=8,param=1,unknown=1");
        assert!(TaskMix::parse("hello=0").is_err());
        assert!(TaskMix::parse("fly")
            .expect_err("unknown")
            .contains("hello, param"));
        assert!(TaskMix::parse("hello,hello").is_err());
        assert!(TaskMix::parse("").is_err());
    }
}
