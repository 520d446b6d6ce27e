/* tests/e2e/host.c — the server under test: `kubus run` in its own
 * process (so a crash is seen, not suffered), on a fresh data dir, the API
 * server on 127.0.0.1 with a port the kernel picks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "harness.h"

/* The default RBAC plus a read-only group for the Forbidden checks, which
 * may also patch the one ConfigMap cm1 (a rule with `names`). */
static const char config_yaml[] =
    "host:\n"
    "  name: e2e\n"
    "  log_level: info\n"
    "auth:\n"
    "  token_file: tokens.csv\n"
    "  rbac:\n"
    "    - groups: [system:masters, kubus:plugins]\n"
    "      verbs: [\"*\"]\n"
    "      apiGroups: [\"*\"]\n"
    "      resources: [\"*\"]\n"
    "    - groups: [viewers]\n"
    "      verbs: [get, list, watch]\n"
    "      apiGroups: [\"*\"]\n"
    "      resources: [\"*\"]\n"
    "    - groups: [viewers]\n"
    "      verbs: [patch]\n"
    "      apiGroups: [\"\"]\n"
    "      resources: [configmaps]\n"
    "      names: [cm1]\n"
    "plugins:\n"
    "  - name: store\n"
    "    use: store-lmdb\n"
    "    config:\n"
    "      path: store-lmdb\n"
    "      sync: false\n"
    "  - name: apiserver\n"
    "    use: apiserver\n"
    "    config:\n"
    "      listen: 127.0.0.1:0\n";

char *e2e_file(struct e2e *e, const char *name, const char *text)
{
	char *path;
	if (asprintf(&path, "%s/%s", e->tmp, name) < 0)
		return NULL;
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		free(path);
		return NULL;
	}
	fputs(text, f);
	fclose(f);
	return path;
}

/* The value after `key` on its line in text (malloc'd). */
static char *value_after(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;
	if (p == NULL)
		return NULL;
	p += strlen(key);
	size_t n = strcspn(p, " \t\r\n\"");
	return strndup(p, n);
}

static char *make_token(struct e2e *e, const char *user, const char *groups)
{
	char *cmd, *out = NULL, *tok = NULL;
	if (asprintf(&cmd,
		"%s/kubus token create --user %s --groups %s --data-dir %s",
		kbt_build_dir(), user, groups, e->data) < 0)
		return NULL;
	int rc = kbt_run(cmd, &out);
	free(cmd);
	if (rc == 0 && out)
		tok = strndup(out, strcspn(out, "\r\n"));
	else
		fprintf(stderr, "e2e: kubus token create failed (%d): %s\n", rc,
		    out ? out : "");
	free(out);
	if (tok && !*tok) {
		free(tok);
		tok = NULL;
	}
	return tok;
}

/* The viewer's token, and a kubelet's (node:n1, for the Node authorizer
 * and NodeRestriction). */
static bool make_viewer(struct e2e *e)
{
	e->viewer_token = make_token(e, "viewer", "viewers");
	e->node_token = make_token(e, "node:n1", "system:nodes");
	return e->viewer_token && e->node_token;
}

static bool spawn(struct e2e *e, const char *const *sets)
{
	char kubus[4096], plugins[4096];
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(plugins, sizeof(plugins), "%s/plugins", kbt_build_dir());
	char *cfg = e2e_file(e, "kubus.yaml", config_yaml);
	if (cfg == NULL || asprintf(&e->log, "%s/kubus.log", e->tmp) < 0) {
		free(cfg);
		return false;
	}
	char *argv[32] = { kubus, "run", "-c", cfg, "--data-dir", e->data,
		"--plugin-path", plugins };
	int n = 8;
	for (size_t i = 0; sets && sets[i] && n < 30; i++) {
		argv[n++] = "--set";
		argv[n++] = (char *)sets[i];
	}
	argv[n] = NULL;
	e->pid = kbt_spawn(argv, e->log);
	free(cfg);
	return e->pid > 0;
}

/* Wait for the kubeconfig line, then read the URL and the admin token. */
static bool wait_ready(struct e2e *e)
{
	char *log = kbt_wait_file(e->log, "export KUBECONFIG=", 30000);
	if (log == NULL) {
		char *all = kbt_slurp(e->log);
		fprintf(stderr,
		    "e2e: the server did not come up in 30 s; its log:\n%s\n",
		    all ? all : "(none)");
		free(all);
		return false;
	}
	e->server = value_after(log, "serving the Kubernetes API\" url=");
	free(log);
	const char *colon = e->server ? strrchr(e->server, ':') : NULL;
	e->port = colon ? atoi(colon + 1) : 0;
	if (asprintf(&e->kubeconfig, "%s/admin.kubeconfig", e->data) < 0 ||
	    asprintf(&e->ca, "%s/apiserver/ca.crt", e->data) < 0)
		return false;
	char *kc = kbt_slurp(e->kubeconfig);
	e->admin_token = value_after(kc, "token: ");
	free(kc);
	if (e->port <= 0 || e->admin_token == NULL) {
		fprintf(stderr, "e2e: no url= in the log or no token in %s\n",
		    e->kubeconfig);
		return false;
	}
	return true;
}

bool e2e_start(struct e2e *e, const char *const *sets)
{
	e->tmp = kbt_mkdtemp("e2e");
	if (e->tmp == NULL || asprintf(&e->data, "%s/data", e->tmp) < 0 ||
	    asprintf(&e->home, "%s/home", e->tmp) < 0)
		return false;
	if (mkdir(e->data, 0700) || mkdir(e->home, 0700)) {
		fprintf(stderr, "e2e: mkdir: %s\n", strerror(errno));
		return false;
	}
	if (!make_viewer(e) || !spawn(e, sets))
		return false;
	if (!wait_ready(e)) {
		e2e_stop(e, 2000);
		return false;
	}
	printf("# server %s (pid %d), data in %s\n", e->server, (int)e->pid,
	    e->data);
	return true;
}

bool e2e_alive(struct e2e *e)
{
	if (e->pid <= 0)
		return false;
	int st;
	pid_t r = waitpid(e->pid, &st, WNOHANG);
	if (r == 0)
		return true;
	if (r == e->pid) {
		fprintf(stderr, "e2e: the server exited: %s %d\n",
		    WIFSIGNALED(st) ? "signal" : "status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		e->pid = 0;
	}
	return false;
}

bool e2e_stop(struct e2e *e, int wait_ms)
{
	if (e->pid <= 0)
		return false;
	kill(e->pid, SIGTERM);
	int st = kbt_wait_pid(e->pid, wait_ms);
	bool clean = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (st < 0)
		kbt_kill(e->pid);
	e->pid = 0;
	return clean;
}

void e2e_free(struct e2e *e)
{
	if (e->pid > 0)
		e2e_stop(e, 5000);
	if (e->tmp && !getenv("KUBUS_E2E_KEEP"))
		kbt_rmrf(e->tmp);
	free(e->tmp);
	free(e->data);
	free(e->home);
	free(e->kubeconfig);
	free(e->ca);
	free(e->kubectl);
	free(e->server);
	free(e->admin_token);
	free(e->viewer_token);
	free(e->node_token);
	free(e->log);
}
