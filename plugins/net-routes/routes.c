/* plugins/net-routes/routes.c — host-gw pod routes (kind service).
 *
 * Watches Nodes through the `api` bus service and keeps, in the main
 * routing table, one route per other node: `spec.podCIDR via <InternalIP>`.
 * Every route it makes carries its own protocol number (`proto`, default
 * 0x4b = 75), and only routes with that number are ever changed or removed:
 * routes of the administrator, of CNI or of the proxy are never touched. At
 * stop it removes all of its routes.
 *
 * The kernel is programmed with iproute2 (`ip -batch`, one process per
 * sync, whatever the number of nodes), the state read back with `ip route
 * show proto N`: a sync makes the table equal to the Nodes, so a route
 * removed by hand or left from an earlier run is repaired or removed by the
 * next one. Node fields are checked (inet_pton, prefix length, host bits
 * cleared) before they reach a command line.
 *
 *   - name: net-routes
 *     use: net-routes
 *     config:
 *       node_name: worker-1     # this node (default: the host's name)
 *       proto: 75               # the routes' protocol number (1-255, not 0-4)
 *       resync: 30s             # full sync this often, besides every change
 *       netns: ""               # a named network namespace (ip -n), for tests
 *       ip: /usr/sbin/ip        # the iproute2 binary
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kubus/client.h>
#include <kubus/kubus.h>

#define MAX_ROUTES 65536
#define RETRY_MS 2000

struct cfg {
	char *node_name;
	int64_t proto;
	int64_t resync_ms;
	char *netns;
	char *ip;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("node_name", struct cfg, node_name, NULL, "this node (default: the host's name)"),
	KB_OPT_INT("proto", struct cfg, proto, "75", 5, 255, "protocol number that marks this plugin's routes"),
	KB_OPT_DURATION("resync", struct cfg, resync_ms, "30s", "full sync period"),
	KB_OPT_STR("netns", struct cfg, netns, "", "named network namespace to program (ip -n)"),
	KB_OPT_STR("ip", struct cfg, ip, "", "the iproute2 binary (default /usr/sbin/ip, /sbin/ip or ip on PATH)"),
	KB_OPT_END,
};

struct route {
	char dst[24]; /* a.b.c.d/n, host bits clear */
	char gw[16];
	char node[64];
};

struct nr {
	kb_ctx *ctx;
	struct cfg cfg;
	char node[256];
	char ip[256];
	struct kb_informer *nodes;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool dirty, stop;
	/* the last sync's desired routes, for tests and logs */
	size_t nroutes;
};

/* --- checking what a Node says ------------------------------------------------------ */

/* "10.244.1.0/24" (host bits cleared) from a CIDR string; false if bad. */
static bool canon_cidr(const char *s, size_t len, char *out, size_t outlen)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *slash = strchr(buf, '/');
	if (slash == NULL || slash[1] == '\0' || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
	    strlen(slash + 1) > 2)
		return false;
	*slash = '\0';
	int plen = atoi(slash + 1);
	struct in_addr a;
	if (plen < 1 || plen > 32 || inet_pton(AF_INET, buf, &a) != 1)
		return false;
	uint32_t mask = plen == 32 ? 0xffffffffu : ~(0xffffffffu >> plen);
	a.s_addr = htonl(ntohl(a.s_addr) & mask);
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(out, outlen, "%s/%d", ip, plen);
	return true;
}

static bool canon_ip(const char *s, size_t len, char *out, size_t outlen)
{
	char buf[64];
	struct in_addr a;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	inet_ntop(AF_INET, &a, out, (socklen_t)outlen);
	return true;
}

struct desired {
	struct nr *nr;
	struct route *v;
	size_t n, cap;
};

static void add_route(struct desired *d, const char *dst, const char *gw, const char *node)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].dst, dst) == 0) {
			if (strcmp(node, d->v[i].node) == 0)
				return; /* podCIDR is podCIDRs[0] too */
			/* Two nodes claim one CIDR: keep the first by name. */
			if (strcmp(node, d->v[i].node) < 0) {
				snprintf(d->v[i].gw, sizeof(d->v[i].gw), "%s", gw);
				snprintf(d->v[i].node, sizeof(d->v[i].node), "%s", node);
			}
			kb_warn(d->nr->ctx, "two nodes claim one pod CIDR", "cidr=%s node=%s", dst, node);
			return;
		}
	}
	if (d->n == d->cap) {
		if (d->cap >= MAX_ROUTES)
			return;
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct route *nv = realloc(d->v, cap * sizeof(*nv));
		if (nv == NULL)
			return;
		d->v = nv;
		d->cap = cap;
	}
	struct route *r = &d->v[d->n++];
	snprintf(r->dst, sizeof(r->dst), "%s", dst);
	snprintf(r->gw, sizeof(r->gw), "%s", gw);
	snprintf(r->node, sizeof(r->node), "%s", node);
}

/* Informer cache walk: under its lock, so only copies leave. */
static void want_node(void *arg, const msgpack_object *obj)
{
	struct desired *d = arg;
	const char *name, *s;
	size_t nl, sl;
	char node[64], gw[16] = "", dst[24];
	if (!kb_mp_str(obj, "metadata.name", &name, &nl) || nl == 0 || nl >= sizeof(node))
		return;
	memcpy(node, name, nl);
	node[nl] = '\0';
	if (strcmp(node, d->nr->node) == 0)
		return; /* our own pods are on our bridge */
	const msgpack_object *addrs = kb_mp_get(obj, "status.addresses");
	for (uint32_t i = 0; addrs && addrs->type == MSGPACK_OBJECT_ARRAY && i < addrs->via.array.size; i++) {
		const msgpack_object *a = &addrs->via.array.ptr[i];
		if (kb_mp_streq(a, "type", "InternalIP") && kb_mp_str(a, "address", &s, &sl) &&
		    canon_ip(s, sl, gw, sizeof(gw)))
			break;
		gw[0] = '\0';
	}
	if (gw[0] == '\0')
		return;
	bool any = false;
	if (kb_mp_str(obj, "spec.podCIDR", &s, &sl) && canon_cidr(s, sl, dst, sizeof(dst))) {
		add_route(d, dst, gw, node);
		any = true;
	}
	const msgpack_object *cidrs = kb_mp_get(obj, "spec.podCIDRs");
	for (uint32_t i = 0; cidrs && cidrs->type == MSGPACK_OBJECT_ARRAY && i < cidrs->via.array.size; i++) {
		const msgpack_object *c = &cidrs->via.array.ptr[i];
		if (c->type == MSGPACK_OBJECT_STR &&
		    canon_cidr(c->via.str.ptr, c->via.str.size, dst, sizeof(dst)))
			add_route(d, dst, gw, node), any = true; /* IPv6 ones are skipped */
	}
	(void)any;
}

/* --- iproute2 ---------------------------------------------------------------------- */

/* Run ip with argv (after the binary and -n NS); output (stdout+stderr,
 * malloc'd) in *out. Returns the exit status, -1 when it could not run. */
static int run_ip(struct nr *nr, const char *const *args, char **out)
{
	const char *argv[16];
	size_t n = 0;
	argv[n++] = nr->ip;
	if (nr->cfg.netns[0]) {
		argv[n++] = "-n";
		argv[n++] = nr->cfg.netns;
	}
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int p[2];
	*out = NULL;
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = read(p[0], buf + len, cap - len - 1)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)r;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	close(p[0]);
	if (buf)
		buf[len] = '\0';
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The routes of our proto in the main table. */
static int current_routes(struct nr *nr, struct route **out, size_t *n)
{
	char proto[16], *text;
	snprintf(proto, sizeof(proto), "%lld", (long long)nr->cfg.proto);
	const char *args[] = { "-4", "route", "show", "table", "main", "proto", proto, NULL };
	*out = NULL;
	*n = 0;
	int rc = run_ip(nr, args, &text);
	if (rc != 0) {
		kb_warn(nr->ctx, "cannot read routes", "status=%d output=\"%.200s\"", rc,
		    text ? text : "");
		free(text);
		return KB_ESYS;
	}
	size_t cap = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char dst[64] = "", gw[64] = "";
		const char *via = strstr(line, " via ");
		if (sscanf(line, "%63s", dst) != 1)
			continue;
		if (via)
			sscanf(via + 5, "%63s", gw);
		if (strchr(dst, '/') == NULL && strlen(dst) < 40)
			strcat(dst, "/32");
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			struct route *nv = realloc(*out, cap * sizeof(*nv));
			if (nv == NULL)
				break;
			*out = nv;
		}
		struct route *r = &(*out)[(*n)++];
		snprintf(r->dst, sizeof(r->dst), "%.23s", dst);
		snprintf(r->gw, sizeof(r->gw), "%.15s", gw);
		r->node[0] = '\0';
	}
	free(text);
	return 0;
}

static int sync_routes(struct nr *nr)
{
	struct desired d = { .nr = nr };
	kb_informer_each(nr->nodes, want_node, &d);
	struct route *cur;
	size_t ncur;
	int rc = current_routes(nr, &cur, &ncur);
	if (rc) {
		free(d.v);
		return rc;
	}
	char path[] = "/tmp/kubus-net-routes-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		free(d.v);
		free(cur);
		return KB_ESYS;
	}
	size_t adds = 0, dels = 0;
	for (size_t i = 0; i < d.n; i++) {
		bool have = false;
		for (size_t j = 0; j < ncur; j++)
			if (!strcmp(cur[j].dst, d.v[i].dst) && !strcmp(cur[j].gw, d.v[i].gw))
				have = true;
		if (!have) {
			fprintf(f, "route replace %s via %s proto %lld\n", d.v[i].dst, d.v[i].gw,
			    (long long)nr->cfg.proto);
			adds++;
		}
	}
	for (size_t j = 0; j < ncur; j++) {
		bool want = false;
		for (size_t i = 0; i < d.n; i++)
			if (!strcmp(cur[j].dst, d.v[i].dst))
				want = true;
		if (!want) {
			fprintf(f, "route del %s proto %lld table main\n", cur[j].dst, (long long)nr->cfg.proto);
			dels++;
		}
	}
	fclose(f);
	rc = 0;
	if (adds + dels > 0) {
		char *text;
		const char *args[] = { "-force", "-batch", path, NULL };
		int st = run_ip(nr, args, &text);
		if (st != 0) {
			kb_warn(nr->ctx, "some routes failed", "status=%d output=\"%.300s\"", st,
			    text ? text : "");
			rc = KB_ESYS;
		} else {
			kb_info(nr->ctx, "routes synced", "added=%zu removed=%zu total=%zu", adds, dels, d.n);
		}
		free(text);
	}
	unlink(path);
	nr->nroutes = d.n;
	free(d.v);
	free(cur);
	return rc;
}

static void flush_routes(struct nr *nr)
{
	char proto[16], *text;
	snprintf(proto, sizeof(proto), "%lld", (long long)nr->cfg.proto);
	const char *args[] = { "-4", "route", "flush", "table", "main", "proto", proto, NULL };
	int rc = run_ip(nr, args, &text);
	if (rc != 0)
		kb_warn(nr->ctx, "cannot remove routes", "status=%d output=\"%.200s\"", rc, text ? text : "");
	else
		kb_info(nr->ctx, "routes removed", "proto=%s", proto);
	free(text);
}

/* --- the sync thread --------------------------------------------------------------- */

static void poke(struct nr *nr)
{
	pthread_mutex_lock(&nr->mu);
	nr->dirty = true;
	pthread_cond_signal(&nr->cv);
	pthread_mutex_unlock(&nr->mu);
}

/* Informer handlers: its thread; only mark the table dirty. */
static void on_add(void *arg, const msgpack_object *obj)
{
	(void)obj;
	poke(arg);
}

static void on_update(void *arg, const msgpack_object *old, const msgpack_object *obj)
{
	(void)old;
	(void)obj;
	poke(arg);
}

static void *sync_main(void *arg)
{
	struct nr *nr = arg;
	while (!kb_informer_wait_synced(nr->nodes, 200)) {
		pthread_mutex_lock(&nr->mu);
		bool stop = nr->stop;
		pthread_mutex_unlock(&nr->mu);
		if (stop)
			return NULL;
	}
	int64_t wait_ms = 0;
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&nr->mu);
		while (!nr->stop && !nr->dirty && wait_ms > 0)
			if (pthread_cond_timedwait(&nr->cv, &nr->mu, &ts) == ETIMEDOUT)
				break;
		bool stop = nr->stop;
		nr->dirty = false;
		pthread_mutex_unlock(&nr->mu);
		if (stop)
			break;
		wait_ms = sync_routes(nr) == 0 ? nr->cfg.resync_ms : RETRY_MS;
		if (wait_ms <= 0)
			wait_ms = 3600 * 1000;
	}
	return NULL;
}

/* --- the plugin -------------------------------------------------------------------- */

static const char *find_ip(const char *conf)
{
	if (conf && conf[0])
		return conf;
	if (access("/usr/sbin/ip", X_OK) == 0)
		return "/usr/sbin/ip";
	if (access("/sbin/ip", X_OK) == 0)
		return "/sbin/ip";
	return "/bin/ip";
}

static int nr_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct nr *nr = calloc(1, sizeof(*nr));
	if (nr == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	nr->ctx = ctx;
	if (kb_conf_opts(conf, opts, &nr->cfg, kb_instance(ctx), err, sizeof(err))) {
		free(nr);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	/* proto 0-4 are the kernel's own (unspec, redirect, kernel, boot, static). */
	const char *node = nr->cfg.node_name ? nr->cfg.node_name : kb_host_name(ctx);
	snprintf(nr->node, sizeof(nr->node), "%s", node ? node : "");
	for (char *p = nr->node; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(nr->ip, sizeof(nr->ip), "%s", find_ip(nr->cfg.ip));
	int rc = 0;
	if (nr->node[0] == '\0') {
		rc = kb_fail(ctx, KB_EINVAL, "node_name is empty and the host has no name");
	} else if (strlen(nr->cfg.netns) > 64 ||
	    strspn(nr->cfg.netns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
	        strlen(nr->cfg.netns) || nr->cfg.netns[0] == '-') {
		rc = kb_fail(ctx, KB_EINVAL, "netns `%.80s`: expected a namespace name ([A-Za-z0-9._-], at most 64)",
		    nr->cfg.netns);
	} else if (access(nr->ip, X_OK) != 0) {
		rc = kb_fail(ctx, KB_ENOENT, "ip `%s`: %s (iproute2 is needed)", nr->ip, strerror(errno));
	}
	if (rc == 0) {
		static const struct kb_informer_handlers h = { on_add, on_update, on_add };
		struct kb_informer_opts io = { 0 };
		nr->nodes = kb_informer_new(ctx, &KB_GVR_NODES, &io, &h, nr);
		if (nr->nodes == NULL)
			rc = kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	if (rc) {
		kb_conf_opts_free(opts, &nr->cfg);
		free(nr);
		return rc;
	}
	pthread_mutex_init(&nr->mu, NULL);
	pthread_cond_init(&nr->cv, NULL);
	*state = nr;
	return 0;
}

static int nr_start(kb_ctx *ctx, void *state)
{
	struct nr *nr = state;
	if (kb_informer_start(nr->nodes))
		return kb_fail(ctx, KB_EUNAVAILABLE, "cannot watch nodes");
	if (pthread_create(&nr->thread, NULL, sync_main, nr) != 0)
		return kb_fail(ctx, KB_ESYS, "cannot start the sync thread");
	nr->running = true;
	kb_info(ctx, "programming pod routes", "node=%s proto=%lld netns=%s", nr->node,
	    (long long)nr->cfg.proto, nr->cfg.netns[0] ? nr->cfg.netns : "(host)");
	return 0;
}

static void nr_stop(kb_ctx *ctx, void *state)
{
	(void)ctx;
	struct nr *nr = state;
	if (nr->running) {
		pthread_mutex_lock(&nr->mu);
		nr->stop = true;
		pthread_cond_signal(&nr->cv);
		pthread_mutex_unlock(&nr->mu);
		pthread_join(nr->thread, NULL);
		nr->running = false;
	}
	kb_informer_free(nr->nodes);
	nr->nodes = NULL;
	flush_routes(nr);
}

static void nr_fini(void *state)
{
	struct nr *nr = state;
	if (nr == NULL)
		return;
	kb_informer_free(nr->nodes);
	pthread_mutex_destroy(&nr->mu);
	pthread_cond_destroy(&nr->cv);
	kb_conf_opts_free(opts, &nr->cfg);
	free(nr);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "net-routes",
		.version = "0.1.0",
		.description = "host-gw: a route to every other node's pod CIDR via its InternalIP",
		.kind = KB_KIND_SERVICE,
		.init = nr_init,
		.start = nr_start,
		.stop = nr_stop,
		.fini = nr_fini,
	};
	return &p;
}
