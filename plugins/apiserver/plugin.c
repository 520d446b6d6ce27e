/* plugins/apiserver/plugin.c — the apiserver plugin: config, lifecycle. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "busapi.h"
#include "http.h"
#include "pki.h"
#include "server.h"

struct cfg {
	char *listen;
	bool plain_http;
	char *service_cidr;
	char *node_port_range;
	int64_t request_timeout;
	int64_t max_body;
	int64_t max_inflight;
	int64_t watch_buffer;
	int64_t bookmark_interval;
	int64_t bus_workers;
	int64_t bus_workers_max;
	int64_t http_threads;
	char *cluster_domain;
	char *hosts;
	char *advertise;
	bool write_kubeconfig;
	int64_t event_ttl;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("listen", struct cfg, listen, "127.0.0.1:6443",
	    "HOST:PORT to serve the API on"),
	KB_OPT_BOOL("plain_http", struct cfg, plain_http, "false",
	    "serve plain HTTP (loopback only)"),
	KB_OPT_STR("service_cidr", struct cfg, service_cidr, "10.96.0.0/12",
	    "ClusterIPs come from here"),
	KB_OPT_STR("node_port_range", struct cfg, node_port_range,
	    "30000-32767", "NodePorts come from here"),
	KB_OPT_DURATION("request_timeout", struct cfg, request_timeout, "60s",
	    "per request"),
	KB_OPT_SIZE("max_body", struct cfg, max_body, "3Mi",
	    "largest request body (413 beyond)"),
	KB_OPT_INT("max_inflight", struct cfg, max_inflight, "400", 1, 100000,
	    "concurrent requests before 429"),
	KB_OPT_INT("watch_buffer", struct cfg, watch_buffer, "8192", 16,
	    10000000, "events a watcher may lag"),
	KB_OPT_DURATION("bookmark_interval", struct cfg, bookmark_interval,
	    "60s", "watch bookmarks"),
	KB_OPT_INT("bus_workers", struct cfg, bus_workers, "32", 1, 1024,
	    "threads answering the `api` bus service, kept"),
	KB_OPT_INT("bus_workers_max", struct cfg, bus_workers_max, "256", 1,
	    4096,
	    "threads answering the `api` bus service while requests wait"),
	KB_OPT_INT("http_threads", struct cfg, http_threads, "0", 0, 64,
	    "HTTP event loops (0: one per core)"),
	KB_OPT_STR("cluster_domain", struct cfg, cluster_domain,
	    "cluster.local", "the cluster DNS domain"),
	KB_OPT_STR("hosts", struct cfg, hosts, NULL,
	    "extra names and IPs for the serving certificate"),
	KB_OPT_STR("advertise", struct cfg, advertise, NULL,
	    "HOST or HOST:PORT the other API servers reach this one at"),
	KB_OPT_BOOL("kubeconfig", struct cfg, write_kubeconfig, "true",
	    "write DATA_DIR/admin.kubeconfig"),
	KB_OPT_DURATION("event_ttl", struct cfg, event_ttl, "1h",
	    "Events are deleted this long after their last write (0: kept)"),
	KB_OPT_END,
};

struct plugin {
	struct api_server s;
	struct cfg cfg;
	struct api_busapi *bus;
	struct api_http *http;
	struct api_pki pki;
};

static int api_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct plugin *p = calloc(1, sizeof(*p));
	char err[1024];
	if (p == NULL)
		return KB_ENOMEM;
	if (kb_conf_opts(conf, opts, &p->cfg, kb_instance(ctx), err, sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	struct api_server *s = &p->s;
	s->ctx = ctx;
	s->listen = p->cfg.listen;
	s->plain_http = p->cfg.plain_http;
	s->service_cidr = p->cfg.service_cidr;
	s->request_timeout_ms = p->cfg.request_timeout;
	s->max_body = p->cfg.max_body;
	s->max_inflight = p->cfg.max_inflight;
	s->watch_buffer = p->cfg.watch_buffer;
	s->bookmark_ms = p->cfg.bookmark_interval;
	s->bus_workers = p->cfg.bus_workers;
	s->bus_workers_max = p->cfg.bus_workers_max > p->cfg.bus_workers ?
	    p->cfg.bus_workers_max :
	    p->cfg.bus_workers;
	s->http_threads = p->cfg.http_threads;
	s->cluster_domain = p->cfg.cluster_domain;
	s->event_ttl_ms = p->cfg.event_ttl;
	if (sscanf(p->cfg.node_port_range, "%" SCNd64 "-%" SCNd64, &s->node_port_min, &s->node_port_max) != 2 ||
	    s->node_port_min < 1 || s->node_port_max > 65535 || s->node_port_min > s->node_port_max) {
		kb_fail(ctx, KB_EINVAL, "node_port_range `%s`: expected MIN-MAX within 1-65535",
		    p->cfg.node_port_range);
		kb_conf_opts_free(opts, &p->cfg);
		free(p);
		return KB_EINVAL;
	}
	pthread_mutex_init(&s->cache_mu, NULL);
	pthread_mutex_init(&s->alloc_mu, NULL);
	p->bus = api_busapi_new(s);
	s->workers = p->bus;
	if (p->bus == NULL) {
		kb_conf_opts_free(opts, &p->cfg);
		free(p);
		return kb_fail(ctx, KB_EEXIST, "cannot serve `api` on the bus");
	}
	*state = p;
	return 0;
}

/* The admin token of the kubeconfig: kept in DIR/admin.token (0600) and
 * reused while the core still knows it, else a new one issued by the core
 * (which owns the token file). */
static char *admin_token(struct plugin *p, const char *dir)
{
	char path[4200], line[256] = "";
	snprintf(path, sizeof(path), "%s/admin.token", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
	}
	struct api_user u;
	if (line[0] && api_authenticate(&p->s, line, &u) == 0) {
		api_user_free(&u);
		return strdup(line);
	}
	kb_msg *rep = NULL;
	char *tok = NULL;
	if (kb_call(p->s.ctx, "auth", "issue",
	        kb_mp_body("{s:s, s:[s]}", "user", "admin", "groups", "system:masters"), 10000,
	        &rep) == 0)
		tok = kb_mp_strdup(kb_msg_body(rep), "token");
	kb_msg_free(rep);
	int fd = tok ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
	if (fd >= 0) {
		if (write(fd, tok, strlen(tok)) < 0 || write(fd, "\n", 1) < 0)
			kb_warn(p->s.ctx, "cannot keep the admin token", "path=%s", path);
		close(fd);
	}
	return tok;
}

static int api_start(kb_ctx *ctx, void *state)
{
	struct plugin *p = state;
	char err[1024], dir[4096];
	snprintf(dir, sizeof(dir), "%s/apiserver", kb_data_dir(ctx));
	/* The serving certificate names the advertised host too: peers
	 * check it (peer.c). */
	char hosts[2048], adv[320];
	snprintf(adv, sizeof(adv), "%s", p->cfg.advertise ? p->cfg.advertise : "");
	char *ac = strrchr(adv, ':');
	if (ac && (adv[0] != '[' || ac > strchr(adv, ']')))
		*ac = '\0';
	if (adv[0] == '[') {
		memmove(adv, adv + 1, strlen(adv));
		adv[strcspn(adv, "]")] = '\0';
	}
	snprintf(hosts, sizeof(hosts), "%s%s%s", p->cfg.hosts ? p->cfg.hosts : "",
	    p->cfg.hosts && adv[0] ? "," : "", adv);
	struct api_pki_names names = { .listen = p->cfg.listen, .hosts = hosts[0] ? hosts : NULL,
		.service_cidr = p->cfg.service_cidr, .cluster_domain = p->cfg.cluster_domain };
	if (!p->s.plain_http && api_pki_load(dir, &names, &p->pki, err, sizeof(err)))
		return kb_fail(ctx, KB_EINTERNAL, "%s", err);
	if (p->pki.reissued)
		kb_info(ctx, "serving certificate issued again", "dir=%s reason=\"%s\"", dir,
		    p->pki.reissued);
	struct api_error e = { 0 };
	if (api_cache_start_all(&p->s, &e) != 0) {
		kb_fail(ctx, KB_EUNAVAILABLE, "cannot watch the store: %s", e.message);
		api_err_clear(&e);
		api_cache_stop_all(&p->s);
		return KB_EUNAVAILABLE;
	}
	api_bootstrap(&p->s);
	if (api_busapi_start(p->bus)) {
		api_cache_stop_all(&p->s);
		return kb_fail(ctx, KB_ESYS, "cannot start the api workers");
	}
	int port = 0;
	p->http = api_http_start(&p->s, &p->pki, &port, err, sizeof(err));
	if (p->http == NULL) {
		api_busapi_stop(p->bus);
		api_cache_stop_all(&p->s);
		return kb_fail(ctx, KB_EUNAVAILABLE, "%s", err);
	}
	char host[256];
	snprintf(host, sizeof(host), "%s", p->s.listen);
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	char server[320];
	snprintf(server, sizeof(server), "%s://%s:%d", p->s.plain_http ? "http" : "https",
	    !strcmp(host, "0.0.0.0") ? "127.0.0.1" : !strcmp(host, "[::]") ? "[::1]" : host, port);
	kb_info(ctx, "serving the Kubernetes API", "url=%s", server);
	if (!p->s.plain_http) {
		char peer_url[320];
		api_peer_url(p->s.listen, p->cfg.advertise, port, peer_url, sizeof(peer_url));
		if (api_peer_start(&p->s, dir, p->pki.ca_pem, peer_url, err, sizeof(err)))
			kb_warn(ctx, "no pod logs through peer API servers", "reason=\"%s\"", err);
	}
	if (p->cfg.write_kubeconfig && !p->s.plain_http) {
		char *tok = admin_token(p, dir);
		char path[4200];
		snprintf(path, sizeof(path), "%s/admin.kubeconfig", kb_data_dir(ctx));
		if (tok && api_kubeconfig_write(path, server, p->pki.ca_pem, "admin", tok, err,
		               sizeof(err)) == 0) {
			/* The one line a user needs, on stdout. */
			printf("export KUBECONFIG=%s\n", path);
			fflush(stdout);
		} else {
			kb_warn(ctx, "no admin kubeconfig written", "reason=\"%s\"",
			    tok ? err : "the core issued no admin token");
		}
		if (tok) {
			memset(tok, 0, strlen(tok));
			free(tok);
		}
	}
	return 0;
}

static void api_stop(kb_ctx *ctx, void *state)
{
	struct plugin *p = state;
	p->s.stopping = true;
	api_peer_stop(&p->s);
	api_http_stop(p->http);
	p->http = NULL;
	api_busapi_stop(p->bus);
	api_cache_stop_all(&p->s);
}

static void api_fini(void *state)
{
	struct plugin *p = state;
	api_busapi_free(p->bus);
	api_peer_free(&p->s);
	api_metrics_free(&p->s);
	api_pki_free(&p->pki);
	api_cache_fini(&p->s);
	api_evttl_free(&p->s);
	pthread_mutex_destroy(&p->s.cache_mu);
	pthread_mutex_destroy(&p->s.alloc_mu);
	kb_conf_opts_free(opts, &p->cfg);
	free(p);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "apiserver",
		.version = "0.1.0",
		.description = "the Kubernetes API over HTTPS, and the `api` bus service",
		.kind = KB_KIND_FRONTEND,
		.init = api_init,
		.start = api_start,
		.stop = api_stop,
		.fini = api_fini,
	};
	return &p;
}
