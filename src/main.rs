//! The `mcp-audit` binary: parses the command line and runs one command.

/// mimalloc instead of the system allocator: the ingest path allocates many short-lived strings
/// on several threads at once, where glibc's malloc spent ~15% of the collector's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: the 16th value of its C enum `mi_option_e` in the
/// mimalloc v3 that libmimalloc-sys 0.1.49 builds (the crate names only some options; the
/// version is pinned in Cargo.toml so that this cannot move unnoticed, and a test below checks
/// that this option has purge_delay's default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory stays free before mimalloc returns it to the OS (its default: 1 s). The
/// indexing threads free and allocate their arenas again every commit; returned to the OS
/// after a second, each 2 MiB comes back through a page fault that zeroes it (`clear_page_erms`
/// was ~10% of the collector's CPU while `ship` backfilled). Ten seconds keeps what a steady
/// stream reuses, and an idle collector still gives it back.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: sets one integer option; mimalloc allows options to change at any time and
    // reads this one each time it schedules a purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    mcp_audit::cli::main()
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_option_set_is_the_purge_delay() {
        // SAFETY: reads and sets one integer option.
        let before = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, 1000, "not mimalloc's purge delay (default 1000 ms)");
        super::tune_allocator();
        let after = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, super::PURGE_DELAY_MS);
    }
}
