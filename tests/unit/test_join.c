/* tests/unit/test_join.c — workers joining a control plane over tls+tcp on
 * loopback: `kubus join token create`, `kubus join` as its own process
 * (CA pinning, bootstrap token, CSR), the worker host it configures joining
 * with its node certificate and its Node going Ready through the control
 * plane's API; refusals (wrong, expired and revoked tokens, a wrong CA hash,
 * a taken node name, a certificate from another CA); the Node authorizer
 * for a remote node:<name>; a worker that survives a control-plane
 * restart (its watches resume); several control-plane addresses (each
 * pinned; a dead one passed over). The shipped configs parse. */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "conn.h"
#include "harness.h"
#include "host.h"

#define WAIT_MS 20000

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A free loopback port (the control plane restarts on the same one). */
static int free_port(void)
{
	int port = kbt_free_port();
	assert_true(port > 0);
	return port;
}

struct cluster {
	char *dir;
	char cp_dir[512], cp_cfg[600], cp_log[600], tmpl[600];
	int port;
	pid_t cp;
	char token[64], hash[128];
};

static void token_create(struct cluster *c, const char *ttl, char *token, char *hash)
{
	char *out = NULL;
	int rc = kbt_kubus(&out, "join token create --ttl %s --data-dir %s", ttl, c->cp_dir);
	if (rc != 0)
		fail_msg("token create: %s", out);
	/* stdout: the token, then the hash; stderr (merged here): log lines
	 * and a "# …" hint. */
	char t[64] = "", h[128] = "";
	int got = 0;
	for (char *line = strtok(out, "\n"); line && got < 2; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "ts=", 3) || line[0] == '#')
			continue;
		snprintf(got ? h : t, got ? sizeof(h) : sizeof(t), "%s", line);
		got++;
	}
	free(out);
	assert_int_equal(got, 2);
	/* kubeadm's shapes */
	assert_int_equal(strlen(t), 23);
	assert_int_equal(t[6], '.');
	assert_int_equal(strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789."), 23);
	assert_int_equal(strncmp(h, "sha256:", 7), 0);
	assert_int_equal(strlen(h), 71);
	strcpy(token, t);
	if (hash)
		strcpy(hash, h);
}

static void cp_start(struct cluster *c)
{
	char kubus_path[512];
	snprintf(kubus_path, sizeof(kubus_path), "%s/kubus", kbt_build_dir());
	char *argv[] = { kubus_path, "run", "-c", c->cp_cfg, NULL };
	c->cp = kbt_spawn_tied(argv, c->cp_log);
	assert_true(c->cp > 0);
	char *log = kbt_wait_file(c->cp_log, "host running", WAIT_MS);
	if (log == NULL) {
		char *l = kbt_slurp(c->cp_log);
		fail_msg("control plane did not start: %s", l ? l : "");
	}
	free(log);
}

static void cp_stop(struct cluster *c)
{
	if (c->cp > 0)
		kbt_kill(c->cp);
	c->cp = 0;
}

static int setup(void **state)
{
	struct cluster *c = calloc(1, sizeof(*c));
	c->dir = kbt_mkdtemp("join");
	c->port = free_port();
	snprintf(c->cp_dir, sizeof(c->cp_dir), "%s/cp", c->dir);
	snprintf(c->cp_cfg, sizeof(c->cp_cfg), "%s/cp.yaml", c->dir);
	snprintf(c->cp_log, sizeof(c->cp_log), "%s/cp.log", c->dir);
	snprintf(c->tmpl, sizeof(c->tmpl), "%s/worker-template.yaml", c->dir);
	char y[2048];
	snprintf(y, sizeof(y),
	    "host: {name: cp, data_dir: %s, log_level: info}\n"
	    "bus: {listen: [\"ipc://kubus.sock\", \"tls+tcp://127.0.0.1:%d\"]}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n",
	    c->cp_dir, c->port);
	write_text(c->cp_cfg, y);
	/* What `kubus join --template` keeps: a hollow kubelet. */
	write_text(c->tmpl,
	    "# a worker template\n"
	    "host: {name: ignored}\n"
	    "plugins:\n"
	    "  - name: kubelet\n"
	    "    use: kubelet\n"
	    "    config:\n"
	    "      runtime: runtime-fake\n"
	    "      lease_interval: 1s\n"
	    "      sync_period: 200ms\n"
	    "      workers: 1\n");
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct cluster *c = *state;
	cp_stop(c);
	kbt_rmrf(c->dir);
	free(c->dir);
	free(c);
	return 0;
}

/* `kubus join` into DIR as NODE: its status, output in *out. */
static int join(struct cluster *c, const char *node, const char *token, const char *hash,
    const char *dir, char **out)
{
	return kbt_kubus(out, "join 127.0.0.1:%d --token %s --ca-hash %s --node-name %s "
	                  "--data-dir %s/%s --template %s",
	    c->port, token, hash, node, c->dir, dir, c->tmpl);
}

static void expect_refused(int rc, char *out, const char *needle)
{
	printf("refused: %s", out ? out : "(no output)\n");
	assert_int_equal(rc, 1);
	assert_non_null(out);
	assert_non_null(strstr(out, "kubus: join refused: "));
	assert_non_null(strstr(out, needle));
	/* one line */
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	free(out);
}

static bool node_ready(kb_ctx *ctx, const char *name)
{
	kb_msg *rep = NULL;
	bool ok = false;
	if (kb_api_get(ctx, &KB_GVR_NODES, NULL, name, &rep) == 0) {
		const msgpack_object *conds = kb_mp_get(kb_msg_body(rep), "status.conditions");
		for (uint32_t i = 0; conds && conds->type == MSGPACK_OBJECT_ARRAY &&
		     i < conds->via.array.size; i++) {
			const msgpack_object *cd = &conds->via.array.ptr[i];
			if (kb_mp_streq(cd, "type", "Ready") && kb_mp_streq(cd, "status", "True"))
				ok = true;
		}
	}
	kb_msg_free(rep);
	return ok;
}

static bool wait_ready(kb_ctx *ctx, const char *name)
{
	for (int w = 0; w < WAIT_MS; w += 100) {
		if (node_ready(ctx, name))
			return true;
		sleep_ms(100);
	}
	return false;
}

static char *lease_renew(kb_ctx *ctx, const char *name)
{
	kb_msg *rep = NULL;
	char *t = NULL;
	if (kb_api_get(ctx, &KB_GVR_LEASES, "kube-node-lease", name, &rep) == 0)
		t = kb_mp_strdup(kb_msg_body(rep), "spec.renewTime");
	kb_msg_free(rep);
	return t;
}

static bool pod_running(kb_ctx *ctx, const char *name)
{
	kb_msg *rep = NULL;
	bool ok = kb_api_get(ctx, &KB_GVR_PODS, "default", name, &rep) == 0 &&
	    kb_mp_streq(kb_msg_body(rep), "status.phase", "Running");
	kb_msg_free(rep);
	return ok;
}

static void create_pod(kb_ctx *admin, const char *name, const char *node)
{
	kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "spec",
	    "nodeName", node, "containers", "name", "c", "image", "pause");
	kb_msg *rep = NULL;
	int rc = kb_api_create(admin, &KB_GVR_PODS, "default", b, &rep);
	if (rc != 0) {
		const char *m = "";
		if (rep)
			kb_msg_err(rep, &m);
		fail_msg("create pod %s: %s %s", name, kb_strerror(rc), m);
	}
	kb_msg_free(rep);
}

static struct kbt_host *start_worker(struct cluster *c, const char *dir)
{
	char path[1024], err[1024];
	snprintf(path, sizeof(path), "%s/%s/worker.yaml", c->dir, dir);
	char *y = kbt_slurp(path);
	assert_non_null(y);
	struct kbt_host *w = kbt_host_start(y, err, sizeof(err));
	free(y);
	if (w == NULL)
		fail_msg("worker %s: %s", dir, err);
	return w;
}

/* Token refusals, CA pinning, the whole join, the Node authorizer, and a
 * control-plane restart under a running worker. */
static void test_join_cluster(void **state)
{
	struct cluster *c = *state;
	char token[64], hash[128], expired[64], revoked[64], *out = NULL;
	int rc;
	token_create(c, "1h", token, hash);
	token_create(c, "1s", expired, NULL);
	token_create(c, "1h", revoked, NULL);
	/* The hash is the CA's SubjectPublicKeyInfo, as openssl computes it. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	    "openssl x509 -in %s/pki/ca.crt -noout -pubkey | openssl pkey -pubin -outform der | sha256sum",
	    c->cp_dir);
	assert_int_equal(kbt_run(cmd, &out), 0);
	assert_memory_equal(out, hash + 7, 64);
	free(out);
	/* Files with secrets are private. */
	struct stat st;
	snprintf(cmd, sizeof(cmd), "%s/bootstrap-tokens.csv", c->cp_dir);
	assert_int_equal(stat(cmd, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	snprintf(cmd, sizeof(cmd), "%s/pki/ca.key", c->cp_dir);
	assert_int_equal(stat(cmd, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	/* An admin token for the test's own view of the API. */
	char admin_tok[128] = "";
	assert_int_equal(kbt_kubus(&out, "token create --user admin --groups system:masters --data-dir %s",
	                     c->cp_dir), 0);
	sscanf(out, "%127s", admin_tok);
	free(out);
	assert_int_equal(kbt_kubus(&out, "join token list --data-dir %s", c->cp_dir), 0);
	assert_non_null(strstr(out, "valid"));
	free(out);

	cp_start(c);
	char *log = kbt_wait_file(c->cp_log, "join service ready", 1000);
	assert_non_null(log);
	free(log);

	/* A CA hash that does not match: refused before the token is sent. */
	char bad[128];
	snprintf(bad, sizeof(bad), "sha256:%064d", 0);
	rc = join(c, "wa", token, bad, "bad-hash", &out);
	expect_refused(rc, out,
	    "do not match --ca-hash");
	log = kbt_slurp(c->cp_log);
	assert_null(strstr(log, "join-wa"));
	free(log);
	/* A wrong token, an expired one, a revoked one. */
	rc = join(c, "wa", "abcdef.0123456789abcdef", hash, "bad-token", &out);
	expect_refused(rc, out,
	    "invalid bearer token");
	assert_int_equal(kbt_kubus(NULL, "join token revoke %.6s --data-dir %s", revoked, c->cp_dir), 0);
	sleep_ms(2100); /* the token expires; the host re-reads the token file */
	rc = join(c, "wa", expired, hash, "expired", &out);
	expect_refused(rc, out, "expired at");
	rc = join(c, "wa", revoked, hash, "revoked", &out);
	expect_refused(rc, out, "invalid bearer token");
	/* Malformed input: clear errors, exit 1 or 2, no crash. */
	assert_int_equal(kbt_kubus(&out, "join 127.0.0.1:%d --token nope --ca-hash %s", c->port, hash), 1);
	assert_non_null(strstr(out, "--token: expected"));
	free(out);
	assert_int_equal(kbt_kubus(&out, "join 127.0.0.1:%d --token %s --ca-hash md5:1 --data-dir %s/x",
	                     c->port, token, c->dir), 1);
	assert_non_null(strstr(out, "--ca-hash: expected"));
	free(out);
	assert_int_equal(kbt_kubus(&out, "join token create --ttl soon --data-dir %s", c->cp_dir), 2);
	assert_non_null(strstr(out, "--ttl"));
	free(out);

	/* The good join. */
	rc = join(c, "wa", token, hash, "wa", &out);
	if (rc != 0)
		fail_msg("join: %s", out);
	assert_non_null(strstr(out, "joined as node:wa"));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s/wa/pki/node.key", c->dir);
	assert_int_equal(stat(cmd, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/wa/pki/node.crt -noout -subject", c->dir);
	assert_int_equal(kbt_run(cmd, &out), 0);
	assert_non_null(strstr(out, "CN = node:wa"));
	assert_non_null(strstr(out, "O = system:nodes"));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s/wa/worker.yaml", c->dir);
	char *wy = kbt_slurp(cmd);
	assert_non_null(wy);
	snprintf(cmd, sizeof(cmd), "join: \"tls+tcp://127.0.0.1:%d\"", c->port);
	assert_non_null(strstr(wy, cmd));
	assert_non_null(strstr(wy, "runtime: runtime-fake"));
	free(wy);
	/* The name is now taken by wa's key. */
	rc = join(c, "wa", token, hash, "wa-again", &out);
	expect_refused(rc, out,
	    "already registered by another key");
	rc = join(c, "wb", token, hash, "wb", &out);
	if (rc != 0)
		fail_msg("join wb: %s", out);
	free(out);

	/* The worker joins with its certificate; its Node goes Ready. */
	struct kbt_host *wa = start_worker(c, "wa");
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *ca = kbt_client(wa, "tester", "plugin:tester", groups, 1);
	assert_true(wait_ready(ca, "wa"));

	/* The admin's view, over the control plane's ipc socket. */
	char y[2048], err[1024];
	snprintf(y, sizeof(y), "host: {name: admin}\nbus: {join: \"ipc://%s/kubus.sock\", join_token: %s, listen: []}\n",
	    c->cp_dir, admin_tok);
	struct kbt_host *adm = kbt_host_start(y, err, sizeof(err));
	if (adm == NULL)
		fail_msg("admin: %s", err);
	kb_ctx *ad = kbt_client(adm, "admin", "plugin:admin", groups, 1);
	assert_true(node_ready(ad, "wa"));

	/* Node b, and a pod bound to it: node:wa may not touch either. */
	kb_body *nb = kb_mp_body("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Node",
	    "metadata", "name", "wb");
	assert_int_equal(kb_api_create(ad, &KB_GVR_NODES, NULL, nb, NULL), 0);
	create_pod(ad, "pb", "wb");
	kb_msg *rep = NULL;
	rc = kb_api_patch(ca, &KB_GVR_NODES, NULL, "wb", NULL, "merge",
	    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "owned", "by-wa"), &rep);
	const char *m = "";
	if (rep)
		kb_msg_err(rep, &m);
	/* The Node authorizer's no is final for Nodes: node:wa may not
	 * change node wb (and may not delete it). */
	assert_int_equal(rc, KB_EFORBIDDEN);
	printf("node:wa patching node wb: %s\n", m);
	kb_msg_free(rep);
	rep = NULL;
	rc = kb_api_delete(ca, &KB_GVR_NODES, NULL, "wb", NULL, &rep);
	assert_int_equal(rc, KB_EFORBIDDEN);
	kb_msg_free(rep);
	rep = NULL;
	rc = kb_api_patch(ca, &KB_GVR_PODS, "default", "pb", "status", "merge",
	    kb_mp_body("{s:{s:s}}", "status", "phase", "Failed"), &rep);
	m = "";
	if (rep)
		kb_msg_err(rep, &m);
	printf("node:wa patching pod pb's status: %s (%s)\n", kb_strerror(rc), m);
	assert_int_equal(rc, KB_EFORBIDDEN);
	kb_msg_free(rep);
	rc = kb_api_delete(ca, &KB_GVR_PODS, "default", "pb", NULL, NULL);
	printf("node:wa deleting pod pb: %s\n", kb_strerror(rc));
	assert_int_equal(rc, KB_EFORBIDDEN);
	/* and the pod is untouched */
	rep = NULL;
	assert_int_equal(kb_api_get(ad, &KB_GVR_PODS, "default", "pb", &rep), 0);
	assert_false(kb_mp_streq(kb_msg_body(rep), "status.phase", "Failed"));
	assert_null(kb_mp_get(kb_msg_body(rep), "metadata.deletionTimestamp"));
	kb_msg_free(rep);
	/* Its own Node it may label. */
	assert_int_equal(kb_api_patch(ca, &KB_GVR_NODES, NULL, "wa", NULL, "merge",
	                     kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "mine", "yes"), NULL),
	    0);

	/* A pod for wa runs (the kubelet's watch works through the uplink). */
	create_pod(ad, "pa1", "wa");
	int w = 0;
	for (; w < WAIT_MS && !pod_running(ad, "pa1"); w += 100)
		sleep_ms(100);
	assert_true(w < WAIT_MS);

	/* Kill the control plane and start it again: the worker reconnects
	 * with backoff, its Lease keeps being renewed, its watches resume. */
	cp_stop(c);
	sleep_ms(1500);
	cp_start(c);
	char *before = NULL;
	for (w = 0; w < WAIT_MS && before == NULL; w += 100) {
		before = lease_renew(ca, "wa");
		if (before == NULL)
			sleep_ms(100);
	}
	assert_non_null(before);
	char *after = NULL;
	for (w = 0; w < WAIT_MS; w += 200) {
		free(after);
		after = lease_renew(ca, "wa");
		if (after && strcmp(after, before) != 0)
			break;
		sleep_ms(200);
	}
	printf("lease renewTime %s -> %s after the restart\n", before, after ? after : "-");
	assert_true(w < WAIT_MS);
	free(before);
	free(after);
	assert_true(node_ready(ca, "wa"));
	for (w = 0; w < WAIT_MS; w += 200) {
		if (node_ready(ad, "wa")) /* the admin host reconnected too */
			break;
		sleep_ms(200);
	}
	assert_true(w < WAIT_MS);
	create_pod(ad, "pa2", "wa");
	for (w = 0; w < WAIT_MS && !pod_running(ad, "pa2"); w += 100)
		sleep_ms(100);
	assert_true(w < WAIT_MS);
	assert_true(pod_running(ad, "pa1"));
	kbt_host_stop(adm);
	kbt_host_stop(wa);
}

/* `kubus join` with several addresses: one with another CA is refused
 * before the token goes anywhere; a dead one first is passed over (and
 * written all the same), and the worker host then joins past it. */
static void test_join_several_addresses(void **state)
{
	struct cluster *c = *state;
	char token[64], hash[128], *out = NULL, y[2048], err[1024];
	token_create(c, "1h", token, hash);
	cp_start(c);
	char *log = kbt_wait_file(c->cp_log, "join service ready", 1000);
	assert_non_null(log);
	free(log);
	/* Another cluster's bus: its own CA, made at its first start. */
	snprintf(y, sizeof(y),
	    "host: {name: rogue, data_dir: %s/rogue}\n"
	    "bus: {listen: [\"tls+tcp://127.0.0.1:0\"]}\n",
	    c->dir);
	struct kbt_host *rogue = kbt_host_start(y, err, sizeof(err));
	if (rogue == NULL)
		fail_msg("rogue host: %s", err);
	const char *rurl = kb_net_listen_url(kbt_host_core(rogue)->net, 0);
	const char *rhp = rurl + strlen("tls+tcp://");
	int rc = kbt_kubus(&out, "join 127.0.0.1:%d,%s --token %s --ca-hash %s --node-name wm "
	                     "--data-dir %s/wm --template %s",
	    c->port, rhp, token, hash, c->dir, c->tmpl);
	expect_refused(rc, out, "do not match --ca-hash");
	log = kbt_slurp(c->cp_log);
	assert_null(strstr(log, "join-wm")); /* not even the good one heard the token */
	free(log);
	kbt_host_stop(rogue);

	/* A dead address first, then the control plane (a second argument). */
	int dead = free_port();
	rc = kbt_kubus(&out, "join 127.0.0.1:%d 127.0.0.1:%d --token %s --ca-hash %s --node-name wm "
	                 "--data-dir %s/wm --template %s",
	    dead, c->port, token, hash, c->dir, c->tmpl);
	if (rc != 0)
		fail_msg("join: %s", out);
	printf("%s", out);
	assert_non_null(strstr(out, "did not answer"));
	assert_non_null(strstr(out, "joined as node:wm"));
	free(out);
	char path[1024];
	snprintf(path, sizeof(path), "%s/wm/worker.yaml", c->dir);
	char *wy = kbt_slurp(path);
	assert_non_null(wy);
	char want[256];
	snprintf(want, sizeof(want), "  join: \"tls+tcp://127.0.0.1:%d,tls+tcp://127.0.0.1:%d\"\n",
	    dead, c->port);
	assert_non_null(strstr(wy, want));
	free(wy);
	/* What it wrote parses, and --set bus.join=… still replaces it. */
	char dd[1200], set[128];
	snprintf(dd, sizeof(dd), "%s/wm-parse", c->dir);
	snprintf(set, sizeof(set), "bus.join=tls+tcp://127.0.0.1:%d , tls+tcp://127.0.0.1:%d,", c->port, dead);
	const char *sets[] = { set, NULL };
	struct kb_host_opts o = { .config_file = path, .data_dir = dd, .sets = sets };
	struct kb_host *h = kb_host_new(&o, err, sizeof(err));
	if (h == NULL)
		fail_msg("the written worker.yaml with --set: %s", err);
	snprintf(want, sizeof(want), "tls+tcp://127.0.0.1:%d", c->port);
	assert_string_equal(h->join[0], want);
	snprintf(want, sizeof(want), "tls+tcp://127.0.0.1:%d", dead);
	assert_string_equal(h->join[1], want);
	assert_null(h->join[2]);
	kb_host_free(h);
	struct kbt_host *w = start_worker(c, "wm");
	snprintf(want, sizeof(want), "tls+tcp://127.0.0.1:%d", c->port);
	assert_string_equal(kb_net_uplink_url(kbt_host_core(w)->net), want);
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *wc = kbt_client(w, "tester", "plugin:tester", groups, 1);
	assert_true(wait_ready(wc, "wm"));
	kbt_host_stop(w);
}

/* A worker with a certificate for node:wa from another CA is refused,
 * and so is one whose certificate is good but whose key is not. */
static void test_forged_certificate(void **state)
{
	struct cluster *c = *state;
	char token[64], hash[128], *out = NULL, cmd[2048];
	token_create(c, "1h", token, hash);
	cp_start(c);
	int rc = join(c, "wa", token, hash, "wa", &out);
	if (rc != 0)
		fail_msg("join: %s", out);
	free(out);
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout rogue-ca.key -out rogue-ca.crt -subj /CN=kubus-bus-ca -days 1 && "
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-keyout forged.key -out forged.csr -subj /O=system:nodes/CN=node:wa && "
	    "printf 'extendedKeyUsage=clientAuth\\n' > forged.ext && "
	    "openssl x509 -req -in forged.csr -CA rogue-ca.crt -CAkey rogue-ca.key "
	    "-CAcreateserial -days 1 -out forged.crt -extfile forged.ext",
	    c->dir);
	assert_int_equal(kbt_run(cmd, &out), 0);
	free(out);
	char y[2048], err[1024];
	const char *keys[][2] = {
		{ "forged.crt", "forged.key" }, /* another CA */
		{ "wa/pki/node.crt", "forged.key" }, /* the right certificate, not its key */
	};
	for (int i = 0; i < 2; i++) {
		snprintf(y, sizeof(y),
		    "host: {name: wa}\n"
		    "bus:\n"
		    "  join: \"tls+tcp://127.0.0.1:%d\"\n"
		    "  listen: []\n"
		    "  tls: {cert: %s/%s, key: %s/%s, ca: %s/wa/pki/ca.crt, server_name: kubus-bus}\n",
		    c->port, c->dir, keys[i][0], c->dir, keys[i][1], c->dir);
		struct kbt_host *w = kbt_host_start(y, err, sizeof(err));
		if (w)
			kbt_host_stop(w);
		assert_null(w);
		printf("refused as expected: %s\n", err);
		assert_non_null(strstr(err, "refused"));
	}
}

/* configs/control-plane.yaml itself (ports and data dir moved) takes a
 * join, and `kubus join --template configs/worker.yaml` writes a config
 * that parses. Skipped when a plugin it names is not built here. */
static void test_shipped_control_plane(void **state)
{
	struct cluster *c = *state;
	char path[1024];
	snprintf(path, sizeof(path), "%s/configs/control-plane.yaml", kbt_src_dir());
	char *text = kbt_slurp(path);
	assert_non_null(text);
	for (const char *p = text; (p = strstr(p, "use: ")) != NULL; p += 5) {
		char use[64] = "", so[1200];
		sscanf(p + 5, "%63[a-z0-9-]", use);
		snprintf(so, sizeof(so), "%s/plugins/kubus-%s.so", kbt_build_dir(), use);
		if (access(so, R_OK) != 0) {
			printf("skipped: %s is not built\n", so);
			free(text);
			return;
		}
	}
	/* Move what a parallel test run could collide on. */
	struct { const char *from; char to[600]; } subst[] = {
		{ "/var/lib/kubus", "" },
		{ "tls+tcp://127.0.0.1:7443", "" },
		{ "listen: 127.0.0.1:6443", "listen: \"127.0.0.1:0\"\n      kubeconfig: false" },
		{ "127.0.0.1:5353", "" },
		{ "sync: true", "sync: false" },
	};
	snprintf(subst[0].to, sizeof(subst[0].to), "%s", c->cp_dir);
	snprintf(subst[1].to, sizeof(subst[1].to), "tls+tcp://127.0.0.1:%d", c->port);
	snprintf(subst[3].to, sizeof(subst[3].to), "127.0.0.1:%d", free_port());
	for (size_t i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
		char *at = strstr(text, subst[i].from);
		assert_non_null(at);
		size_t fl = strlen(subst[i].from), tl = strlen(subst[i].to), n = strlen(text);
		char *nt = malloc(n - fl + tl + 1);
		assert_non_null(nt);
		memcpy(nt, text, (size_t)(at - text));
		memcpy(nt + (at - text), subst[i].to, tl);
		strcpy(nt + (at - text) + tl, at + fl);
		free(text);
		text = nt;
	}
	char err[1024];
	struct kbt_host *cp = kbt_host_start(text, err, sizeof(err));
	free(text);
	if (cp == NULL)
		fail_msg("configs/control-plane.yaml: %s", err);
	char token[64], hash[128], *out = NULL;
	token_create(c, "10m", token, hash);
	sleep_ms(1100); /* the host re-reads the token file at most once a second */
	int rc = kbt_kubus(&out, "join 127.0.0.1:%d --token %s --ca-hash %s --node-name shipped "
	                     "--data-dir %s/shipped --template %s/configs/worker.yaml",
	    c->port, token, hash, c->dir, kbt_src_dir());
	if (rc != 0)
		fail_msg("join: %s", out);
	free(out);
	snprintf(path, sizeof(path), "%s/shipped/worker.yaml", c->dir);
	char *wy = kbt_slurp(path);
	assert_non_null(wy);
	assert_non_null(strstr(wy, "use: proxy"));
	assert_non_null(strstr(wy, "use: net-routes"));
	assert_non_null(strstr(wy, "runtime: runtime-runc"));
	free(wy);
	char dd[1200];
	snprintf(dd, sizeof(dd), "%s/shipped-run", c->dir);
	struct kb_host_opts o = { .config_file = path, .data_dir = dd };
	struct kb_host *h = kb_host_new(&o, err, sizeof(err));
	if (h == NULL)
		fail_msg("the written worker.yaml: %s", err);
	assert_string_equal(h->name, "shipped");
	assert_non_null(h->join);
	assert_non_null(strstr(h->join[0], "tls+tcp://127.0.0.1:"));
	assert_null(h->join[1]);
	assert_non_null(h->tls_cert);
	kb_host_free(h);
	kbt_host_stop(cp);
}

/* The shipped configs parse (plugins are not loaded: some are still being
 * written elsewhere). */
static void test_configs_parse(void **state)
{
	(void)state;
	const char *files[] = { "control-plane.yaml", "worker.yaml", "ha-etcd.yaml" };
	for (size_t i = 0; i < 3; i++) {
		char path[1024], err[1024];
		char *dd = kbt_mkdtemp("join-conf");
		snprintf(path, sizeof(path), "%s/configs/%s", kbt_src_dir(), files[i]);
		struct kb_host_opts o = { .config_file = path, .data_dir = dd };
		struct kb_host *h = kb_host_new(&o, err, sizeof(err));
		if (h == NULL)
			fail_msg("%s: %s", files[i], err);
		assert_true(h->ninsts >= 3);
		kb_host_free(h);
		kbt_rmrf(dd);
		free(dd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_configs_parse),
		cmocka_unit_test_setup_teardown(test_join_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_several_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shipped_control_plane, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
