/* tests/e2e/main.c — the end-to-end run: one server, kubectl and raw HTTP
 * against it, then a stop under a watch and a second server for the
 * in-flight limit. Under three minutes; processes are ended by pid only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "harness.h"

#define SKIP 77

static char *find_kubectl(void)
{
	const char *k = getenv("KUBECTL");
	if (k && *k)
		return access(k, X_OK) == 0 ? strdup(k) : NULL;
	return access("/usr/bin/kubectl", X_OK) == 0 ?
	    strdup("/usr/bin/kubectl") :
	    NULL;
}

static bool have_plugins(void)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/plugins/kubus-apiserver.so",
	    kbt_build_dir());
	return access(p, R_OK) == 0;
}

static void show_log_tail(const struct e2e *e)
{
	char *log = e->log ? kbt_slurp(e->log) : NULL;
	if (log == NULL)
		return;
	size_t n = strlen(log);
	const char *from = n > 6000 ? log + n - 6000 : log;
	printf("# the server's log (last part):\n%s\n", from);
	free(log);
}

static void run(struct e2e *e)
{
	e2e_slow_begin(e);
	e2e_kubectl_steps(e);
	e2e_kubectl_errors(e);
	e2e_semantics_steps(e);
	e2e_old_kubectl(e);
	e2e_http_steps(e);
	e2e_garbage_steps(e);
	e2e_slow_end(e);
	if (e2e_alive(e))
		e2e_pass(e, "the server survived all of it");
	else
		e2e_fail(e, "the server survived all of it", "it is gone");
	e2e_stop_steps(e);
	e2e_inflight_steps(e);
	e2e_watch_expiry_steps(e);
}

int main(void)
{
	struct e2e e = { 0 };
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	e.kubectl = find_kubectl();
	if (e.kubectl == NULL || !have_plugins()) {
		printf("e2e: skipped: %s\n",
		    e.kubectl ?
			"the apiserver plugin is not built" :
			"no kubectl (./build.sh installs kubernetes-client)");
		free(e.kubectl);
		return SKIP;
	}
	if (!e2e_start(&e, NULL)) {
		show_log_tail(&e);
		printf("e2e: 0 passed, 1 failed\n");
		e2e_free(&e);
		return 1;
	}
	run(&e);
	if (e.failed)
		show_log_tail(&e);
	printf("e2e: %d passed, %d failed, %d skipped\n", e.passed, e.failed,
	    e.skipped);
	int rc = e.failed ? 1 : 0;
	e2e_free(&e);
	return rc;
}
