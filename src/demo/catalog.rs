//! The company the generated traffic comes from: its MCP servers and their tools (with the
//! MCP annotations and descriptions their `tools/list` answers carry), its people, their
//! clients and addresses, and the gateways that observe the calls.
//!
//! Everything here is constant: the same catalog for every seed. What varies with the seed is
//! who does what when ([`super::conversations`]). The catalog deliberately holds the overlaps a
//! real company has: `search`, `list_issues`, `get_issue` and `create_issue` are offered by
//! more than one server from the first minute (not shadowing), descriptions mention
//! `~/.kube/config` and say "Important:" (not poisoning), and one internal server reports no
//! annotations at all (so the MCP defaults apply: not read-only, destructive, open-world).

use sha2::{Digest, Sha256};

use crate::event::Annotations;

/// One tool parameter, for the JSON schema in `tools/list` answers.
pub struct Param {
    pub name: &'static str,
    /// JSON schema type: `string`, `integer`, `boolean`, `array` or `object`.
    pub ty: &'static str,
    pub description: &'static str,
    pub required: bool,
}

/// One tool as its server describes it.
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    /// As the server reports them; [`Annotations::default`] when it reports none.
    pub annotations: Annotations,
    /// Typical latency in ms (low, high).
    pub latency_ms: (u64, u64),
}

/// One MCP server the company runs or uses.
pub struct Server {
    pub name: &'static str,
    /// A stdio server on the user's machine, observed by the local `mcp-audit wrap` (source
    /// [`WRAP_SOURCE`]); otherwise a remote server behind the company gateway.
    pub local: bool,
    pub tools: &'static [Tool],
}

const fn req(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        ty,
        description,
        required: true,
    }
}

const fn opt(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        ty,
        description,
        required: false,
    }
}

const fn hints(
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
) -> Annotations {
    Annotations {
        read_only: Some(read_only),
        destructive: Some(destructive),
        idempotent: Some(idempotent),
        open_world: Some(open_world),
    }
}

/// Read-only, its domain closed (the company's own data).
const READ_PRIVATE: Annotations = Annotations {
    read_only: Some(true),
    destructive: None,
    idempotent: Some(true),
    open_world: Some(false),
};
/// Read-only, content from the open world (web pages, public issues, error reports).
const READ_OPEN: Annotations = Annotations {
    read_only: Some(true),
    destructive: None,
    idempotent: Some(true),
    open_world: Some(true),
};
/// Additive write that others outside the conversation see (a post, an issue, a PR).
const WRITE_OPEN: Annotations = hints(false, false, false, true);
/// Additive write inside the company's own systems.
const WRITE_PRIVATE: Annotations = hints(false, false, false, false);
/// Overwrites or deletes inside the company's own systems.
const DESTROY_PRIVATE: Annotations = hints(false, true, false, false);
/// The server reports no hints: MCP defaults apply (destructive, open-world).
const UNANNOTATED: Annotations = Annotations {
    read_only: None,
    destructive: None,
    idempotent: None,
    open_world: None,
};

/// The source of events observed by `mcp-audit wrap` on laptops (local stdio servers).
pub const WRAP_SOURCE: &str = "wrap";
/// The two gateway replicas behind the load balancer; a session sticks to one.
pub const GATEWAYS: &[&str] = &["gateway-1", "gateway-2"];
/// The gateway in front of CI and scheduled jobs.
pub const CI_GATEWAY: &str = "ci-gateway";

#[rustfmt::skip]
pub static SERVERS: &[Server] = &[
    Server { name: "github", local: false, tools: &[
        Tool { name: "get_issue", description: "Get the details of an issue in a GitHub repository: title, body, labels, state and comments.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("issue_number", "integer", "Issue number")],
            annotations: READ_OPEN, latency_ms: (180, 900) },
        Tool { name: "list_issues", description: "List issues in a GitHub repository, newest first. Supports filtering by state, labels and assignee.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), opt("state", "string", "open, closed or all"), opt("labels", "array", "Label names to filter by"), opt("per_page", "integer", "Results per page (max 100)")],
            annotations: READ_OPEN, latency_ms: (200, 1200) },
        Tool { name: "search_code", description: "Search code across GitHub repositories using GitHub's code search syntax.",
            params: &[req("query", "string", "Search query, e.g. 'retry repo:acme/web language:go'"), opt("per_page", "integer", "Results per page")],
            annotations: READ_OPEN, latency_ms: (400, 2500) },
        Tool { name: "get_file_contents", description: "Get the contents of a file or directory from a GitHub repository. Important: use the default branch unless the user names another ref.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("path", "string", "Path to the file or directory"), opt("ref", "string", "Branch, tag or commit SHA")],
            annotations: READ_PRIVATE, latency_ms: (150, 800) },
        Tool { name: "list_commits", description: "List commits of a branch in a GitHub repository.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), opt("sha", "string", "Branch name or commit SHA"), opt("per_page", "integer", "Results per page")],
            annotations: READ_PRIVATE, latency_ms: (150, 700) },
        Tool { name: "create_pull_request", description: "Open a new pull request in a GitHub repository.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("title", "string", "Pull request title"), req("head", "string", "Branch with the changes"), req("base", "string", "Branch to merge into"), opt("body", "string", "Pull request description"), opt("draft", "boolean", "Open as a draft")],
            annotations: WRITE_OPEN, latency_ms: (600, 2500) },
        Tool { name: "create_issue", description: "Create a new issue in a GitHub repository.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("title", "string", "Issue title"), opt("body", "string", "Issue body (Markdown)"), opt("labels", "array", "Labels to apply")],
            annotations: WRITE_OPEN, latency_ms: (400, 1500) },
        Tool { name: "add_issue_comment", description: "Add a comment to an issue or pull request.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("issue_number", "integer", "Issue or pull request number"), req("body", "string", "Comment text (Markdown)")],
            annotations: WRITE_OPEN, latency_ms: (300, 1200) },
        Tool { name: "create_or_update_file", description: "Create or update a single file in a GitHub repository with a commit. Overwrites the file if it exists.",
            params: &[req("owner", "string", "Repository owner"), req("repo", "string", "Repository name"), req("path", "string", "Path of the file"), req("content", "string", "New file content"), req("message", "string", "Commit message"), req("branch", "string", "Branch to commit to"), opt("sha", "string", "Blob SHA of the file being replaced")],
            annotations: hints(false, true, true, true), latency_ms: (500, 2000) },
        Tool { name: "create_gist", description: "Create a GitHub gist, public or secret, from one or more files.",
            params: &[req("files", "object", "File names mapped to their content"), opt("description", "string", "Gist description"), opt("public", "boolean", "Whether the gist is public")],
            annotations: WRITE_OPEN, latency_ms: (400, 1400) },
    ]},
    Server { name: "filesystem", local: true, tools: &[
        Tool { name: "read_file", description: "Read the complete contents of a file from the file system. Only works within the allowed directories.",
            params: &[req("path", "string", "Path of the file")], annotations: READ_PRIVATE, latency_ms: (2, 40) },
        Tool { name: "read_multiple_files", description: "Read several files at once; failed reads do not stop the others.",
            params: &[req("paths", "array", "Paths of the files")], annotations: READ_PRIVATE, latency_ms: (4, 80) },
        Tool { name: "list_directory", description: "List the files and directories in a directory, marked [FILE] or [DIR].",
            params: &[req("path", "string", "Directory path")], annotations: READ_PRIVATE, latency_ms: (2, 30) },
        Tool { name: "search_files", description: "Recursively search for files whose names match a pattern, starting from a directory.",
            params: &[req("path", "string", "Directory to start from"), req("pattern", "string", "Glob pattern"), opt("excludePatterns", "array", "Patterns to skip")],
            annotations: READ_PRIVATE, latency_ms: (10, 400) },
        Tool { name: "write_file", description: "Create a new file or completely overwrite an existing file with new content. Use with caution: it overwrites without warning.",
            params: &[req("path", "string", "Path of the file"), req("content", "string", "Content to write")], annotations: hints(false, true, true, false), latency_ms: (2, 50) },
        Tool { name: "edit_file", description: "Make line-based edits to a text file and return a git-style diff of the changes.",
            params: &[req("path", "string", "Path of the file"), req("edits", "array", "Edits as {oldText, newText} pairs"), opt("dryRun", "boolean", "Preview the diff without writing")],
            annotations: DESTROY_PRIVATE, latency_ms: (3, 60) },
        Tool { name: "create_directory", description: "Create a directory, including missing parents. Succeeds silently if it exists.",
            params: &[req("path", "string", "Directory path")], annotations: hints(false, false, true, false), latency_ms: (1, 10) },
    ]},
    Server { name: "git", local: true, tools: &[
        Tool { name: "git_status", description: "Show the working tree status.",
            params: &[req("repo_path", "string", "Path to the Git repository")], annotations: READ_PRIVATE, latency_ms: (10, 120) },
        Tool { name: "git_log", description: "Show the commit log.",
            params: &[req("repo_path", "string", "Path to the Git repository"), opt("max_count", "integer", "Maximum number of commits")], annotations: READ_PRIVATE, latency_ms: (10, 150) },
        Tool { name: "git_diff", description: "Show differences between the working tree and a branch or commit.",
            params: &[req("repo_path", "string", "Path to the Git repository"), req("target", "string", "Branch or commit to compare with")], annotations: READ_PRIVATE, latency_ms: (10, 300) },
        Tool { name: "git_commit", description: "Record staged changes to the repository with a message.",
            params: &[req("repo_path", "string", "Path to the Git repository"), req("message", "string", "Commit message")], annotations: WRITE_PRIVATE, latency_ms: (20, 200) },
        Tool { name: "git_create_branch", description: "Create a new branch from an optional base branch.",
            params: &[req("repo_path", "string", "Path to the Git repository"), req("branch_name", "string", "Name of the new branch"), opt("base_branch", "string", "Branch to start from")],
            annotations: WRITE_PRIVATE, latency_ms: (10, 80) },
        Tool { name: "git_fetch", description: "Download objects and refs from a remote.",
            params: &[req("repo_path", "string", "Path to the Git repository"), opt("remote", "string", "Remote name, default origin")], annotations: hints(false, false, true, true), latency_ms: (300, 4000) },
    ]},
    Server { name: "terminal", local: true, tools: &[
        Tool { name: "run_command", description: "Run a shell command in the project directory and return its output (stdout and stderr, last 400 lines). Commands time out after 10 minutes.",
            params: &[req("command", "string", "Shell command"), opt("cwd", "string", "Working directory"), opt("timeout_ms", "integer", "Timeout")],
            annotations: hints(false, true, false, true), latency_ms: (200, 90_000) },
        Tool { name: "ssh_run", description: "Run a command on a host from the team's SSH inventory.",
            params: &[req("host", "string", "Host name from the inventory"), req("command", "string", "Command to run")],
            annotations: hints(false, true, false, true), latency_ms: (400, 20_000) },
    ]},
    Server { name: "postgres", local: false, tools: &[
        Tool { name: "query", description: "Run a read-only SQL query against the analytics replica. Statements run in a READ ONLY transaction.",
            params: &[req("sql", "string", "SQL query"), opt("database", "string", "Database name")], annotations: READ_PRIVATE, latency_ms: (15, 3500) },
        Tool { name: "execute", description: "Run a SQL statement that modifies data on the primary. Requires the db-writers group.",
            params: &[req("sql", "string", "SQL statement"), opt("database", "string", "Database name")], annotations: DESTROY_PRIVATE, latency_ms: (10, 2000) },
        Tool { name: "list_tables", description: "List tables with their row estimates and sizes.",
            params: &[opt("schema", "string", "Schema name, default public"), opt("database", "string", "Database name")], annotations: READ_PRIVATE, latency_ms: (10, 200) },
    ]},
    Server { name: "slack", local: false, tools: &[
        Tool { name: "list_channels", description: "List public channels in the workspace.",
            params: &[opt("limit", "integer", "Maximum channels")], annotations: READ_PRIVATE, latency_ms: (150, 600) },
        Tool { name: "get_channel_history", description: "Get recent messages from a channel. Shared (Slack Connect) channels include messages from other organisations.",
            params: &[req("channel", "string", "Channel name or id"), opt("limit", "integer", "Number of messages")], annotations: READ_OPEN, latency_ms: (150, 900) },
        Tool { name: "search", description: "Search messages and files in the workspace.",
            params: &[req("query", "string", "Search query"), opt("count", "integer", "Results")], annotations: READ_OPEN, latency_ms: (200, 1200) },
        Tool { name: "post_message", description: "Post a message to a channel or thread.",
            params: &[req("channel", "string", "Channel name or id"), req("text", "string", "Message text (mrkdwn)"), opt("thread_ts", "string", "Reply in this thread")],
            annotations: WRITE_OPEN, latency_ms: (150, 700) },
        Tool { name: "add_reaction", description: "Add an emoji reaction to a message.",
            params: &[req("channel", "string", "Channel"), req("timestamp", "string", "Message timestamp"), req("name", "string", "Emoji name")],
            annotations: hints(false, false, true, true), latency_ms: (100, 400) },
    ]},
    Server { name: "linear", local: false, tools: &[
        Tool { name: "list_issues", description: "List Linear issues for a team, filtered by state, assignee or label.",
            params: &[req("team", "string", "Team key, e.g. ENG"), opt("state", "string", "Workflow state"), opt("assignee", "string", "Assignee email or 'me'"), opt("limit", "integer", "Maximum issues")],
            annotations: READ_PRIVATE, latency_ms: (150, 800) },
        Tool { name: "get_issue", description: "Get a Linear issue with its description, comments and links.",
            params: &[req("id", "string", "Issue identifier, e.g. ENG-1234")], annotations: READ_PRIVATE, latency_ms: (120, 600) },
        Tool { name: "create_issue", description: "Create a Linear issue.",
            params: &[req("team", "string", "Team key"), req("title", "string", "Title"), opt("description", "string", "Markdown description"), opt("priority", "integer", "0 (none) to 4 (low)")],
            annotations: WRITE_PRIVATE, latency_ms: (200, 900) },
        Tool { name: "create_comment", description: "Comment on a Linear issue.",
            params: &[req("issue_id", "string", "Issue identifier"), req("body", "string", "Markdown comment")], annotations: WRITE_PRIVATE, latency_ms: (150, 700) },
    ]},
    Server { name: "fetch", local: false, tools: &[
        Tool { name: "fetch", description: "Fetch a URL and return its content as Markdown (or raw, if asked). Long pages are truncated; use start_index to read on.",
            params: &[req("url", "string", "URL to fetch"), opt("max_length", "integer", "Maximum characters to return"), opt("start_index", "integer", "Start at this character"), opt("raw", "boolean", "Return raw HTML")],
            annotations: READ_OPEN, latency_ms: (150, 6000) },
        Tool { name: "http_request", description: "Send an HTTP request (GET, POST, PUT, DELETE) to an API on the egress allowlist and return status, headers and body.",
            params: &[req("url", "string", "Request URL"), opt("method", "string", "HTTP method, default GET"), opt("headers", "object", "Request headers"), opt("body", "string", "Request body")],
            annotations: hints(false, false, false, true), latency_ms: (80, 4000) },
    ]},
    Server { name: "playwright", local: true, tools: &[
        Tool { name: "browser_navigate", description: "Navigate the browser to a URL.",
            params: &[req("url", "string", "The URL to navigate to")], annotations: hints(false, false, false, true), latency_ms: (300, 5000) },
        Tool { name: "browser_snapshot", description: "Capture an accessibility snapshot of the current page; better than a screenshot for acting on the page.",
            params: &[], annotations: READ_OPEN, latency_ms: (100, 900) },
        Tool { name: "browser_click", description: "Click an element on the page.",
            params: &[req("element", "string", "Human-readable element description"), req("ref", "string", "Element reference from the snapshot")],
            annotations: hints(false, false, false, true), latency_ms: (100, 1500) },
    ]},
    Server { name: "gdrive", local: false, tools: &[
        Tool { name: "search", description: "Search Google Drive files by name and content.",
            params: &[req("query", "string", "Search query")], annotations: READ_PRIVATE, latency_ms: (300, 1500) },
        Tool { name: "get_file", description: "Read a Google Drive file; Docs are exported as Markdown, Sheets as CSV.",
            params: &[req("file_id", "string", "File id")], annotations: READ_PRIVATE, latency_ms: (300, 2500) },
        Tool { name: "create_document", description: "Create a Google Doc in a folder the user can write to.",
            params: &[req("title", "string", "Document title"), req("content", "string", "Markdown content"), opt("folder_id", "string", "Parent folder")],
            annotations: WRITE_PRIVATE, latency_ms: (500, 2500) },
        Tool { name: "share_file", description: "Share a file with a person, group or domain, or make it available to anyone with the link.",
            params: &[req("file_id", "string", "File id"), req("role", "string", "reader, commenter or writer"), opt("email", "string", "Person or group to share with"), opt("anyone_with_link", "boolean", "Share by link")],
            annotations: WRITE_OPEN, latency_ms: (300, 1200) },
    ]},
    Server { name: "sentry", local: false, tools: &[
        Tool { name: "search_issues", description: "Search Sentry issues in a project (unresolved by default).",
            params: &[req("project", "string", "Project slug"), opt("query", "string", "Sentry search query"), opt("limit", "integer", "Maximum issues")],
            annotations: READ_OPEN, latency_ms: (300, 1800) },
        Tool { name: "get_issue_details", description: "Get a Sentry issue with its latest event: message, stack trace, tags and request data.",
            params: &[req("issue_id", "string", "Issue id, e.g. WEB-3F2")], annotations: READ_OPEN, latency_ms: (300, 1500) },
        Tool { name: "resolve_issue", description: "Mark a Sentry issue as resolved.",
            params: &[req("issue_id", "string", "Issue id")], annotations: hints(false, false, true, true), latency_ms: (200, 800) },
    ]},
    Server { name: "kubernetes", local: false, tools: &[
        Tool { name: "kubectl_get", description: "Get Kubernetes resources. Uses the current context from your kubeconfig (KUBECONFIG or ~/.kube/config).",
            params: &[req("resource", "string", "Resource type, e.g. pods"), opt("name", "string", "Resource name"), opt("namespace", "string", "Namespace"), opt("output", "string", "wide, yaml or json")],
            annotations: READ_PRIVATE, latency_ms: (150, 1500) },
        Tool { name: "kubectl_logs", description: "Get the logs of a pod's container.",
            params: &[req("pod", "string", "Pod name"), opt("namespace", "string", "Namespace"), opt("container", "string", "Container"), opt("tail", "integer", "Lines from the end"), opt("since", "string", "e.g. 15m")],
            annotations: READ_PRIVATE, latency_ms: (200, 2500) },
        Tool { name: "kubectl_rollout_restart", description: "Restart a deployment by rolling its pods.",
            params: &[req("deployment", "string", "Deployment name"), req("namespace", "string", "Namespace")], annotations: DESTROY_PRIVATE, latency_ms: (300, 2000) },
        Tool { name: "kubectl_delete", description: "Delete Kubernetes resources by name or label selector.",
            params: &[req("resource", "string", "Resource type"), opt("name", "string", "Resource name"), opt("namespace", "string", "Namespace"), opt("selector", "string", "Label selector")],
            annotations: DESTROY_PRIVATE, latency_ms: (300, 5000) },
        Tool { name: "kubectl_apply", description: "Apply a manifest to the cluster.",
            params: &[req("manifest", "string", "YAML manifest"), opt("namespace", "string", "Namespace"), opt("dry_run", "string", "none, client or server")],
            annotations: hints(false, true, true, false), latency_ms: (400, 4000) },
    ]},
    Server { name: "terraform", local: false, tools: &[
        Tool { name: "terraform_plan", description: "Run terraform plan in a workspace and return the plan summary. Does not change infrastructure.",
            params: &[req("workspace", "string", "Workspace, e.g. prod-eu-network"), opt("target", "array", "Resource addresses to limit the plan to")],
            annotations: READ_PRIVATE, latency_ms: (8_000, 90_000) },
        Tool { name: "terraform_apply", description: "Apply a saved plan to a workspace.",
            params: &[req("workspace", "string", "Workspace"), req("plan_id", "string", "Id of the saved plan to apply")],
            annotations: hints(false, true, false, true), latency_ms: (20_000, 400_000) },
        Tool { name: "terraform_state_list", description: "List the resources in a workspace's state.",
            params: &[req("workspace", "string", "Workspace")], annotations: READ_PRIVATE, latency_ms: (1_000, 6_000) },
    ]},
    Server { name: "warehouse", local: false, tools: &[
        Tool { name: "list_datasets", description: "List the analytics datasets you can query, with owners and freshness.",
            params: &[opt("domain", "string", "Business domain, e.g. billing")], annotations: UNANNOTATED, latency_ms: (200, 900) },
        Tool { name: "run_analysis", description: "Run a cohort, funnel or anomaly analysis over a dataset on the warehouse cluster and return the summary table. Each run scans the dataset in full and is billed to your team.",
            params: &[req("dataset", "string", "Dataset name"), req("kind", "string", "cohort, funnel, anomaly or breakdown"), opt("params", "object", "Analysis parameters"), opt("window", "string", "Time window, e.g. 90d")],
            annotations: UNANNOTATED, latency_ms: (15_000, 240_000) },
        Tool { name: "delete_dataset", description: "Delete a derived dataset you own.",
            params: &[req("dataset", "string", "Dataset name")], annotations: UNANNOTATED, latency_ms: (500, 3_000) },
    ]},
    Server { name: "context7", local: false, tools: &[
        Tool { name: "resolve-library-id", description: "Resolve a package or product name to a Context7 library id. Call this before get-library-docs unless the user gives an id in the form /org/project.",
            params: &[req("libraryName", "string", "Library name to search for")],
            annotations: Annotations { read_only: Some(true), destructive: None, idempotent: None, open_world: None }, latency_ms: (200, 900) },
        Tool { name: "get-library-docs", description: "Fetch up-to-date documentation for a library by its Context7 id.",
            params: &[req("context7CompatibleLibraryID", "string", "Library id, e.g. /tokio-rs/tokio"), opt("topic", "string", "Topic to focus on"), opt("tokens", "integer", "Maximum tokens of documentation")],
            annotations: Annotations { read_only: Some(true), destructive: None, idempotent: None, open_world: None }, latency_ms: (400, 3000) },
    ]},
];

/// Tools whose every call is costly (a full warehouse scan billed to the team), for
/// `mcp-burst-expensive-tool`. By (server, tool).
pub const EXPENSIVE_TOOLS: &[(&str, &str)] = &[("warehouse", "run_analysis")];

/// The server named `name`. Only for names of [`SERVERS`]; the tests check every name the
/// generators use.
pub fn server(name: &str) -> &'static Server {
    SERVERS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("demo catalog has no server {name:?}"))
}

/// The tool `server`/`name` of [`SERVERS`] (as [`server`]).
pub fn tool(server_name: &str, name: &str) -> &'static Tool {
    server(server_name)
        .tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("demo catalog has no tool {server_name}/{name}"))
}

/// The tool as a `tools/list` entry: name, description, input schema, annotations.
pub fn tool_json(tool: &Tool, description: &str) -> serde_json::Value {
    let params: Vec<(&str, &str, &str, bool)> = tool
        .params
        .iter()
        .map(|p| (p.name, p.ty, p.description, p.required))
        .collect();
    tool_entry(tool.name, description, &params, &tool.annotations)
}

/// A `tools/list` entry from its parts; params are (name, JSON type, description, required).
pub fn tool_entry(
    name: &str,
    description: &str,
    params: &[(&str, &str, &str, bool)],
    annotations: &Annotations,
) -> serde_json::Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for (p, ty, about, needed) in params {
        properties.insert(
            p.to_string(),
            serde_json::json!({"type": ty, "description": about}),
        );
        if *needed {
            required.push(*p);
        }
    }
    let mut entry = serde_json::json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": required},
    });
    let a = annotations;
    if !a.is_empty() {
        let mut hints = serde_json::Map::new();
        for (key, value) in [
            ("readOnlyHint", a.read_only),
            ("destructiveHint", a.destructive),
            ("idempotentHint", a.idempotent),
            ("openWorldHint", a.open_world),
        ] {
            if let Some(v) = value {
                hints.insert(key.into(), v.into());
            }
        }
        entry["annotations"] = hints.into();
    }
    entry
}

/// `sha256:<hex>` of a `tools/list` entry's JSON: what a gateway records as
/// `tool_description_hash`. The same entry always gives the same hash.
pub fn entry_hash(entry: &serde_json::Value) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(entry.to_string())))
}

/// The stable description hash of a catalog tool.
pub fn description_hash(server_name: &str, name: &str) -> String {
    let t = tool(server_name, name);
    entry_hash(&tool_json(t, t.description))
}

/// A server's `tools/list` result as a gateway records it (the JSON-RPC `result`).
pub fn tools_list_result(server_name: &str) -> String {
    let tools: Vec<_> = server(server_name)
        .tools
        .iter()
        .map(|t| tool_json(t, t.description))
        .collect();
    serde_json::json!({ "tools": tools }).to_string()
}

/// Where people work from, for their working hours (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Berlin/London office: about 07–18 UTC.
    Eu,
    /// New York/San Francisco: about 14–01 UTC.
    Us,
    /// Singapore/Sydney: about 23–09 UTC.
    Apac,
}

impl Region {
    /// Relative activity (0..=1) at a UTC hour of the day.
    pub fn activity(self, hour: u8) -> f64 {
        let (first, last) = match self {
            Region::Eu => (7, 18),
            Region::Us => (14, 25),
            Region::Apac => (23, 33),
        };
        let h = hour as i32;
        let inside = |h: i32| h >= first && h < last;
        if inside(h) || inside(h + 24) {
            1.0
        } else if inside(h + 1) || inside(h - 1) || inside(h + 25) || inside(h + 23) {
            0.35
        } else {
            0.04
        }
    }
}

/// What someone mostly does with agents; picks the conversation shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    Developer,
    Sre,
    Data,
    Product,
    Security,
}

/// One person at the company.
pub struct Person {
    pub name: &'static str,
    pub region: Region,
    pub persona: Persona,
    /// Relative share of conversations: a few heavy users, many light ones.
    pub weight: u32,
    /// The clients they use, most used first.
    pub clients: &'static [&'static str],
    pub team: &'static str,
}

const DESK: &[&str] = &["claude-desktop"];
const CURSOR: &[&str] = &["cursor", "claude-desktop"];
const CODE: &[&str] = &["vscode-copilot", "cursor"];
const GOOSE: &[&str] = &["goose", "claude-desktop"];
const DESK_RUNNER: &[&str] = &["claude-desktop", "acme-agent-runner"];

#[rustfmt::skip]
pub static PEOPLE: &[Person] = &[
    Person { name: "alice.nguyen", region: Region::Eu, persona: Persona::Developer, weight: 60, clients: CURSOR, team: "payments" },
    Person { name: "bruno.costa", region: Region::Eu, persona: Persona::Developer, weight: 45, clients: CODE, team: "web" },
    Person { name: "chen.wei", region: Region::Apac, persona: Persona::Developer, weight: 50, clients: CURSOR, team: "platform" },
    Person { name: "dana.levi", region: Region::Us, persona: Persona::Sre, weight: 40, clients: GOOSE, team: "platform" },
    Person { name: "emeka.obi", region: Region::Us, persona: Persona::Developer, weight: 55, clients: CODE, team: "web" },
    Person { name: "farah.haddad", region: Region::Eu, persona: Persona::Data, weight: 35, clients: DESK_RUNNER, team: "data" },
    Person { name: "gus.lindqvist", region: Region::Eu, persona: Persona::Developer, weight: 12, clients: CURSOR, team: "platform" },
    Person { name: "hana.sato", region: Region::Apac, persona: Persona::Product, weight: 10, clients: DESK, team: "web" },
    Person { name: "ian.murphy", region: Region::Eu, persona: Persona::Sre, weight: 14, clients: CURSOR, team: "platform" },
    Person { name: "jo.martin", region: Region::Us, persona: Persona::Product, weight: 9, clients: DESK_RUNNER, team: "payments" },
    Person { name: "kofi.mensah", region: Region::Eu, persona: Persona::Developer, weight: 8, clients: CODE, team: "payments" },
    Person { name: "lena.vogel", region: Region::Eu, persona: Persona::Data, weight: 11, clients: DESK, team: "data" },
    Person { name: "mateo.ruiz", region: Region::Us, persona: Persona::Developer, weight: 10, clients: CURSOR, team: "mobile" },
    Person { name: "nadia.petrova", region: Region::Eu, persona: Persona::Security, weight: 7, clients: DESK, team: "security" },
    Person { name: "omar.farouk", region: Region::Us, persona: Persona::Sre, weight: 9, clients: GOOSE, team: "platform" },
    Person { name: "priya.raman", region: Region::Apac, persona: Persona::Data, weight: 8, clients: DESK_RUNNER, team: "data" },
    Person { name: "quinn.taylor", region: Region::Us, persona: Persona::Developer, weight: 6, clients: CODE, team: "mobile" },
    Person { name: "rosa.almeida", region: Region::Eu, persona: Persona::Product, weight: 6, clients: DESK, team: "payments" },
    Person { name: "sam.oconnor", region: Region::Us, persona: Persona::Developer, weight: 7, clients: CURSOR, team: "web" },
    Person { name: "tariq.aziz", region: Region::Apac, persona: Persona::Sre, weight: 6, clients: CURSOR, team: "platform" },
    Person { name: "uma.iyer", region: Region::Us, persona: Persona::Data, weight: 5, clients: DESK, team: "data" },
    Person { name: "victor.hugo", region: Region::Eu, persona: Persona::Developer, weight: 5, clients: CODE, team: "web" },
    Person { name: "wen.zhao", region: Region::Apac, persona: Persona::Developer, weight: 5, clients: CURSOR, team: "mobile" },
    Person { name: "xavier.dupont", region: Region::Eu, persona: Persona::Product, weight: 4, clients: DESK, team: "web" },
    Person { name: "yara.nasser", region: Region::Us, persona: Persona::Security, weight: 4, clients: DESK, team: "security" },
    Person { name: "zoe.fischer", region: Region::Eu, persona: Persona::Developer, weight: 4, clients: CODE, team: "platform" },
    Person { name: "amir.tehrani", region: Region::Us, persona: Persona::Developer, weight: 3, clients: CURSOR, team: "payments" },
    Person { name: "beatriz.lima", region: Region::Us, persona: Persona::Product, weight: 3, clients: DESK, team: "mobile" },
    Person { name: "colm.byrne", region: Region::Eu, persona: Persona::Sre, weight: 3, clients: GOOSE, team: "platform" },
    Person { name: "divya.menon", region: Region::Apac, persona: Persona::Data, weight: 3, clients: DESK, team: "data" },
    Person { name: "elif.kaya", region: Region::Eu, persona: Persona::Developer, weight: 3, clients: CURSOR, team: "mobile" },
    Person { name: "femi.adeyemi", region: Region::Eu, persona: Persona::Developer, weight: 2, clients: CODE, team: "payments" },
    Person { name: "greta.holm", region: Region::Eu, persona: Persona::Product, weight: 2, clients: DESK, team: "data" },
    Person { name: "hugo.bernard", region: Region::Us, persona: Persona::Developer, weight: 2, clients: CODE, team: "web" },
    Person { name: "isla.grant", region: Region::Apac, persona: Persona::Product, weight: 2, clients: DESK, team: "platform" },
    Person { name: "jonas.berg", region: Region::Eu, persona: Persona::Developer, weight: 1, clients: CURSOR, team: "platform" },
];

/// The CI bot: reviews pull requests through the agent runner's CI mode.
pub const CI_USER: &str = "ci-bot";
pub const CI_CLIENT: &str = "github-actions-agent";
/// Scheduled jobs run by service principals.
pub const REPORT_USER: &str = "svc-reporting";
pub const ANALYTICS_USER: &str = "svc-analytics";
/// The internal agent runner runs tasks on behalf of people, from its own pods.
pub const RUNNER_CLIENT: &str = "acme-agent-runner";
pub const RUNNER_ADDR: &str = "10.40.2.17";
pub const CI_ADDR: &str = "10.40.8.3";

/// Every client the benign traffic uses.
pub const CLIENTS: &[&str] = &[
    "claude-desktop",
    "cursor",
    "vscode-copilot",
    "goose",
    RUNNER_CLIENT,
    CI_CLIENT,
];

/// Whether a client sends MCP session ids (older stdio/SSE-era clients do; the agent runner
/// and CI speak a newer protocol revision without them).
pub fn client_has_sessions(client: &str) -> bool {
    !matches!(client, RUNNER_CLIENT | CI_CLIENT)
}

/// Whether a client runs on the person's own machine (and so can run local stdio servers).
pub fn client_is_desktop(client: &str) -> bool {
    client_has_sessions(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for s in SERVERS {
            assert!(names.insert(s.name), "server {} twice", s.name);
            let mut tools = std::collections::HashSet::new();
            for t in s.tools {
                assert!(tools.insert(t.name), "{}/{} twice", s.name, t.name);
                assert!(t.latency_ms.0 <= t.latency_ms.1);
                if t.annotations.read_only == Some(true) {
                    assert_ne!(t.annotations.destructive, Some(true), "{}", t.name);
                }
            }
        }
        assert!((8..=15).contains(&SERVERS.len()));
        assert!((20..=50).contains(&PEOPLE.len()));
        let hashes: std::collections::HashSet<_> = SERVERS
            .iter()
            .flat_map(|s| s.tools.iter().map(|t| description_hash(s.name, t.name)))
            .collect();
        assert_eq!(
            hashes.len(),
            SERVERS.iter().map(|s| s.tools.len()).sum::<usize>()
        );
        assert_eq!(
            description_hash("github", "get_issue"),
            description_hash("github", "get_issue")
        );
        let list: serde_json::Value =
            serde_json::from_str(&tools_list_result("filesystem")).expect("tools/list is JSON");
        assert_eq!(list["tools"][0]["name"], "read_file");
        assert_eq!(list["tools"][0]["annotations"]["readOnlyHint"], true);
        assert!(list["tools"].as_array().is_some_and(|t| t.len() == 7));
    }

    #[test]
    fn follow_the_sun() {
        for hour in 0..24 {
            let best = [Region::Eu, Region::Us, Region::Apac]
                .iter()
                .map(|r| r.activity(hour))
                .fold(0.0, f64::max);
            assert!(best >= 0.35, "nobody works at {hour}:00 UTC");
        }
    }
}
