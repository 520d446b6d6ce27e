/* core/host.c — config, the plugin lifecycle, and the host API table. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "host.h"
#include "join.h"
#include "log.h"

#ifndef KUBUS_DEFAULT_PLUGIN_PATH
#define KUBUS_DEFAULT_PLUGIN_PATH "/usr/local/lib/kubus/plugins"
#endif

/* jemalloc's options (it reads this variable of the program; other
 * mallocs ignore it): one arena per CPU rather than four per CPU shared
 * out among threads. A host's threads hand memory to each other (an API
 * worker builds a list's 3 MiB answer, a libmicrohttpd loop frees it
 * once sent); spread over 4 x CPUs arenas, every such block came from an
 * arena with nothing free to reuse, and each list of 1,000 pods took
 * ~900 fresh pages (page faults) and twice the time. Per-CPU arenas: 150
 * faults a list. MALLOC_CONF still overrides it. */
__attribute__((visibility("default"))) const char *malloc_conf =
    "percpu_arena:percpu";

/* --- the config's shape ------------------------------------------------------ */

struct root_cfg {
	const kb_conf *host, *bus, *auth, *plugins;
};
static const struct kb_opt root_opts[] = {
	KB_OPT_NODE("host", struct root_cfg, host, "this host's own settings"),
	KB_OPT_NODE("bus", struct root_cfg, bus, "bus listeners and uplink"),
	KB_OPT_NODE("auth", struct root_cfg, auth, "tokens, bus ACL and RBAC"),
	KB_OPT_NODE("plugins", struct root_cfg, plugins, "plugin instances, in start order"),
	KB_OPT_END,
};

struct host_cfg {
	char *name, *data_dir, *log_level;
	char **plugin_path;
};
static const struct kb_opt host_opts[] = {
	KB_OPT_STR("name", struct host_cfg, name, NULL, "host name (default: hostname)"),
	KB_OPT_STR("data_dir", struct host_cfg, data_dir, "/var/lib/kubus", "state, sockets, tokens"),
	KB_OPT_STR("log_level", struct host_cfg, log_level, NULL, "error|warn|info|debug|trace"),
	KB_OPT_STRLIST("plugin_path", struct host_cfg, plugin_path, "directories searched for kubus-NAME.so"),
	KB_OPT_END,
};

struct bus_cfg {
	char **listen, **join;
	char *join_token, *join_token_file;
	const kb_conf *tls;
	int64_t max_message, timeout, keepalive, keepalive_timeout;
};
static const struct kb_opt bus_opts[] = {
	KB_OPT_STRLIST("listen", struct bus_cfg, listen, "ipc://, tcp:// (loopback) or tls+tcp:// URLs"),
	KB_OPT_STRLIST("join", struct bus_cfg, join, "the control plane's bus URL, or several (a list or a,b,c): tried in turn"),
	KB_OPT_STR("join_token", struct bus_cfg, join_token, NULL, "token presented when joining"),
	KB_OPT_STR("join_token_file", struct bus_cfg, join_token_file, NULL, "file holding that token"),
	KB_OPT_NODE("tls", struct bus_cfg, tls, "cert, key, ca files for tls+tcp"),
	KB_OPT_SIZE("max_message", struct bus_cfg, max_message, "64Mi", "largest frame accepted"),
	KB_OPT_DURATION("timeout", struct bus_cfg, timeout, "30s", "default request deadline"),
	KB_OPT_DURATION("keepalive", struct bus_cfg, keepalive, "5s", "uplink ping interval; 0 disables"),
	KB_OPT_DURATION("keepalive_timeout", struct bus_cfg, keepalive_timeout, "0", "silence before the uplink counts as lost (default: 3 x keepalive)"),
	KB_OPT_END,
};

struct tls_cfg {
	char *cert, *key, *ca, *server_name;
};
static const struct kb_opt tls_opts[] = {
	KB_OPT_STR("cert", struct tls_cfg, cert, NULL, "PEM certificate (and key, if key is unset)"),
	KB_OPT_STR("key", struct tls_cfg, key, NULL, "PEM private key"),
	KB_OPT_STR("ca", struct tls_cfg, ca, NULL, "PEM CA that signs peers"),
	KB_OPT_STR("server_name", struct tls_cfg, server_name, NULL, "name the uplink's certificate must carry (default: each join URL's host)"),
	KB_OPT_END,
};

struct auth_cfg {
	char *token_file;
	const kb_conf *policy, *rbac;
};
static const struct kb_opt auth_opts[] = {
	KB_OPT_STR("token_file", struct auth_cfg, token_file, "tokens.csv", "token,user,uid,\"groups\""),
	KB_OPT_NODE("policy", struct auth_cfg, policy, "bus ACL rules"),
	KB_OPT_NODE("rbac", struct auth_cfg, rbac, "API RBAC rules"),
	KB_OPT_END,
};

struct plugin_cfg {
	char *name, *use;
	const kb_conf *config;
	bool isolate;
};
static const struct kb_opt plugin_opts[] = {
	KB_OPT_STR("name", struct plugin_cfg, name, NULL, "instance name (default: use)"),
	KB_OPT_STR_REQ("use", struct plugin_cfg, use, "plugin name on the path, or a file"),
	KB_OPT_NODE("config", struct plugin_cfg, config, "handed to the plugin's init"),
	KB_OPT_BOOL("isolate", struct plugin_cfg, isolate, "false", "run in a child process"),
	KB_OPT_END,
};

/* --- helpers ------------------------------------------------------------------- */

static char *join_list(char **v, const char *sep)
{
	size_t n = 1;
	for (size_t i = 0; v && v[i]; i++)
		n += strlen(v[i]) + strlen(sep);
	char *s = calloc(1, n);
	for (size_t i = 0; s && v && v[i]; i++) {
		if (i)
			strcat(s, sep);
		strcat(s, v[i]);
	}
	return s;
}

static void free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* bus.join's URLs: each item of the list may itself be "a,b,c" (what
 * --set bus.join=a,b,c and a one-line config give); blanks around items
 * and empty items are dropped. A NULL-terminated malloc'd list. */
static char **split_urls(char *const *v)
{
	size_t n = 0, cap = 4;
	char **out = calloc(cap + 1, sizeof(char *));
	for (size_t i = 0; out && v && v[i]; i++) {
		for (const char *p = v[i]; *p;) {
			size_t len = strcspn(p, ",");
			const char *b = p, *e = p + len;
			while (b < e && (*b == ' ' || *b == '\t'))
				b++;
			while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e > b) {
				if (n == cap) {
					char **nv = realloc(out, (2 * cap + 1) * sizeof(char *));
					if (nv == NULL)
						goto fail;
					out = nv;
					cap *= 2;
				}
				if ((out[n] = strndup(b, (size_t)(e - b))) == NULL)
					goto fail;
				out[++n] = NULL;
			}
			p += len + (p[len] == ',');
		}
	}
	return out;
fail:
	free_list(out);
	return NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static char *default_plugin_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char buf[3 * PATH_MAX + 64];
	if (n <= 0)
		return strdup(KUBUS_DEFAULT_PLUGIN_PATH);
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, sizeof(buf), "%s/plugins:%s/../lib/kubus/plugins:%s", exe,
	    exe, KUBUS_DEFAULT_PLUGIN_PATH);
	return strdup(buf);
}

/* "apiserver.listen=x" -> plugins[i].config.listen; "host.x" stays. */
static int apply_set(struct kb_host *h, const kb_conf *plugins, const char *set,
    char *err, size_t errlen)
{
	const char *eq = strchr(set, '=');
	const char *dot = strchr(set, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		snprintf(err, errlen, "--set %s: expected INSTANCE.KEY=VALUE or host.KEY=VALUE", set);
		return KB_EINVAL;
	}
	char head[128], path[512];
	snprintf(head, sizeof(head), "%.*s", (int)(dot - set), set);
	char *key = strndup(dot + 1, (size_t)(eq - dot - 1));
	if (key == NULL)
		return KB_ENOMEM;
	int rc = 0;
	if (!strcmp(head, "host") || !strcmp(head, "bus") || !strcmp(head, "auth")) {
		snprintf(path, sizeof(path), "%s.%s", head, key);
	} else {
		size_t i, n = kb_conf_len(plugins);
		for (i = 0; i < n; i++) {
			const kb_conf *p = kb_conf_at(plugins, i);
			const char *name = kb_conf_str(kb_conf_get(p, "name"));
			if (name == NULL)
				name = kb_conf_str(kb_conf_get(p, "use"));
			if (name && strcmp(name, head) == 0)
				break;
		}
		if (i == n) {
			snprintf(err, errlen,
			    "--set %s: no plugin instance named `%s` (and not host., bus. or auth.)",
			    set, head);
			rc = KB_EINVAL;
			goto out;
		}
		snprintf(path, sizeof(path), "plugins[%zu].config.%s", i, key);
	}
	rc = kb_conf_set(h->conf, path, eq + 1, err, errlen);
out:
	free(key);
	return rc;
}

/* --- creating a host ------------------------------------------------------------- */

static int parse_plugins(struct kb_host *h, const kb_conf *plugins, char *err,
    size_t errlen)
{
	if (plugins == NULL || kb_conf_type(plugins) == KB_CONF_NULL)
		return 0;
	if (kb_conf_type(plugins) != KB_CONF_SEQ) {
		snprintf(err, errlen, "%s:%d:%d: `plugins` must be a list",
		    kb_conf_file(plugins), kb_conf_line(plugins), kb_conf_col(plugins));
		return KB_EINVAL;
	}
	size_t n = kb_conf_len(plugins);
	h->insts = calloc(n ? n : 1, sizeof(*h->insts));
	if (h->insts == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const kb_conf *node = kb_conf_at(plugins, i);
		struct plugin_cfg pc = { 0 };
		int rc = kb_conf_opts(node, plugin_opts, &pc, "plugin entry", err, errlen);
		if (rc)
			return rc;
		struct kb_inst *in = &h->insts[h->ninsts++];
		in->host = h;
		in->use = pc.use;
		in->name = pc.name ? pc.name : strdup(pc.use);
		if (pc.name == NULL)
			pc.use = NULL;
		in->conf = pc.config;
		in->node = node;
		in->isolate = pc.isolate;
		for (size_t j = 0; j + 1 < h->ninsts; j++) {
			if (strcmp(h->insts[j].name, in->name) == 0) {
				/* The same one-line shape as every other plugin
				 * failure; its "file" is where the entry is. */
				snprintf(err, errlen,
				    "plugin \"%s\" (%s:%d:%d): duplicate instance name (plugins[%zu] has it too); give one a `name:`",
				    in->name, kb_conf_file(node), kb_conf_line(node),
				    kb_conf_col(node), j);
				return KB_EEXIST;
			}
		}
	}
	return 0;
}

static int parse_config(struct kb_host *h, const struct kb_host_opts *o,
    char *err, size_t errlen)
{
	struct root_cfg rc0 = { 0 };
	struct host_cfg hc = { 0 };
	struct bus_cfg bc = { 0 };
	struct tls_cfg tc = { 0 };
	struct auth_cfg ac = { 0 };
	int rc = kb_conf_opts(h->conf, root_opts, &rc0, "config", err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; o->sets && o->sets[i]; i++)
		if ((rc = apply_set(h, rc0.plugins, o->sets[i], err, errlen)))
			return rc;
	/* --set may have created sections: look again. */
	if ((rc = kb_conf_opts(h->conf, root_opts, &rc0, "config", err, errlen)))
		return rc;
	if ((rc = kb_conf_opts(rc0.host, host_opts, &hc, "host", err, errlen)))
		return rc;
	if ((rc = kb_conf_opts(rc0.bus, bus_opts, &bc, "bus", err, errlen)))
		goto out_host;
	if ((rc = kb_conf_opts(bc.tls, tls_opts, &tc, "bus.tls", err, errlen)))
		goto out_bus;
	if ((rc = kb_conf_opts(rc0.auth, auth_opts, &ac, "auth", err, errlen)))
		goto out_tls;
	if (hc.log_level) {
		int lv = kb_log_level_parse(hc.log_level);
		if (lv < 0) {
			snprintf(err, errlen, "host.log_level `%s`: expected error, warn, info, debug or trace",
			    hc.log_level);
			rc = KB_EINVAL;
			goto out_auth;
		}
		kb_log_level = lv;
	}
	char hn[256] = "localhost";
	gethostname(hn, sizeof(hn) - 1);
	h->name = strdup(hc.name ? hc.name : hn);
	h->data_dir = strdup(o->data_dir ? o->data_dir : hc.data_dir);
	const char *envpath = getenv("KUBUS_PLUGIN_PATH");
	if (o->plugin_path)
		h->plugin_path = strdup(o->plugin_path);
	else if (envpath && *envpath)
		h->plugin_path = strdup(envpath);
	else if (hc.plugin_path)
		h->plugin_path = join_list(hc.plugin_path, ":");
	else
		h->plugin_path = default_plugin_path();
	if (o->only_instance) {
		/* An isolated child only joins its parent: the listeners in the
		 * config file they share are the parent's (and in use). */
		free_list(bc.listen);
		bc.listen = NULL;
	} else if (bc.listen == NULL) {
		bc.listen = calloc(2, sizeof(char *));
		if (bc.listen)
			bc.listen[0] = strdup("ipc://kubus.sock");
	}
	h->listen = bc.listen;
	bc.listen = NULL;
	/* A child's --join is its parent's one ipc URL, taken as it is. */
	if (o->join_url) {
		h->join = calloc(2, sizeof(char *));
		if (h->join && (h->join[0] = strdup(o->join_url)) == NULL) {
			free(h->join);
			h->join = NULL;
		}
	} else if (bc.join) {
		h->join = split_urls(bc.join);
	}
	if ((o->join_url || bc.join) && h->join == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = KB_ENOMEM;
		goto out_auth;
	}
	if (h->join && h->join[0] == NULL) {
		snprintf(err, errlen, "bus.join: expected one or more URLs (a list, or a,b,c), got none");
		rc = KB_EINVAL;
		goto out_auth;
	}
	h->join_token = o->join_token ? strdup(o->join_token) : bc.join_token;
	if (o->join_token)
		free(bc.join_token);
	bc.join_token = NULL;
	if (h->join_token == NULL && bc.join_token_file) {
		FILE *f = fopen(bc.join_token_file, "r");
		char line[512] = "";
		if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
			snprintf(err, errlen, "bus.join_token_file %s: cannot read: %s",
			    bc.join_token_file, strerror(errno));
			if (f)
				fclose(f);
			rc = KB_EINVAL;
			goto out_auth;
		}
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		h->join_token = strdup(line);
	}
	h->max_message = bc.max_message;
	h->timeout_ms = bc.timeout;
	h->keepalive_ms = bc.keepalive;
	h->keepalive_timeout_ms = bc.keepalive_timeout ? bc.keepalive_timeout : 3 * bc.keepalive;
	if (bc.keepalive > 0 && h->keepalive_timeout_ms <= bc.keepalive) {
		snprintf(err, errlen, "bus.keepalive_timeout (%lld ms) must be longer than bus.keepalive (%lld ms)",
		    (long long)h->keepalive_timeout_ms, (long long)bc.keepalive);
		rc = KB_EINVAL;
		goto out_auth;
	}
	h->tls_cert = tc.cert, tc.cert = NULL;
	h->tls_key = tc.key, tc.key = NULL;
	h->tls_ca = tc.ca, tc.ca = NULL;
	h->tls_server_name = tc.server_name, tc.server_name = NULL;
	h->token_file = ac.token_file, ac.token_file = NULL;
	h->policy = ac.policy;
	h->rbac = ac.rbac;
	rc = parse_plugins(h, rc0.plugins, err, errlen);
out_auth:
	kb_conf_opts_free(auth_opts, &ac);
out_tls:
	kb_conf_opts_free(tls_opts, &tc);
out_bus:
	kb_conf_opts_free(bus_opts, &bc);
out_host:
	kb_conf_opts_free(host_opts, &hc);
	return rc;
}

struct kb_host *kb_host_new(const struct kb_host_opts *o, char *err,
    size_t errlen)
{
	struct kb_host *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (o->config_file) {
		h->conf = kb_conf_load_file(o->config_file, err, errlen);
		char abs[PATH_MAX];
		h->config_file = strdup(realpath(o->config_file, abs) ? abs : o->config_file);
	} else {
		const char *t = o->config_text ? o->config_text : "{}";
		h->conf = kb_conf_parse_yaml(t, strlen(t), "<config>", err, errlen);
	}
	if (h->conf == NULL)
		goto out_free;
	h->argv0 = strdup(o->argv0 ? o->argv0 : "kubus");
	h->only_instance = o->only_instance ? strdup(o->only_instance) : NULL;
	size_t nsets = 0;
	while (o->sets && o->sets[nsets])
		nsets++;
	h->sets = calloc(nsets + 1, sizeof(char *));
	for (size_t i = 0; h->sets && i < nsets; i++)
		h->sets[i] = strdup(o->sets[i]);
	if (parse_config(h, o, err, errlen))
		goto out_free;
	if (mkdir_p(h->data_dir, 0700) != 0) {
		snprintf(err, errlen, "data dir %s: %s", h->data_dir, strerror(errno));
		goto out_free;
	}
	h->auth = kb_auth_new();
	if (h->auth == NULL ||
	    kb_auth_load_policy(h->auth, h->policy, h->rbac, err, errlen))
		goto out_free;
	char tf[PATH_MAX];
	if (h->token_file[0] == '/')
		snprintf(tf, sizeof(tf), "%s", h->token_file);
	else
		snprintf(tf, sizeof(tf), "%s/%s", h->data_dir, h->token_file);
	if (kb_auth_load_tokens(h->auth, tf, err, errlen))
		goto out_free;
	h->bus = kb_bus_new(&kb_host_api_table, h->auth, (int)h->timeout_ms);
	if (h->bus == NULL) {
		snprintf(err, errlen, "cannot start the bus");
		goto out_free;
	}
	/* The core's own endpoint serves `auth` for the API server. */
	static const char *const core_groups[] = { "kubus:core" };
	struct kb_ident *core_id = kb_ident_new("kubus", "kubus", "", core_groups, 1);
	h->core_ep = core_id ? kb_bus_open_local(h->bus, "kubus", core_id, NULL) : NULL;
	kb_ident_unref(core_id);
	if (h->core_ep == NULL ||
	    kb_bus_serve(h->core_ep, "auth", kb_auth_serve, h->auth) != 0) {
		snprintf(err, errlen, "cannot register the auth service");
		goto out_free;
	}
	return h;
out_free:
	kb_host_free(h);
	return NULL;
}

/* --- the lifecycle ------------------------------------------------------------------ */

static struct kb_ident *inst_ident(struct kb_inst *in)
{
	char user[192], kind[64];
	snprintf(user, sizeof(user), "plugin:%s", in->name);
	snprintf(kind, sizeof(kind), "kubus:kind:%s", kb_kind_name(in->desc->kind));
	const char *groups[] = { "kubus:plugins", kind };
	return kb_ident_new(in->name, user, "", groups, 2);
}

static void fail_line(struct kb_inst *in, const char *what, int rc, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "plugin \"%s\" (%s): %s: %s", in->name,
	    in->file ? in->file : in->use, what,
	    in->fail[0] ? in->fail : kb_strerror(rc));
}

static int inst_load(struct kb_inst *in, char *err, size_t errlen)
{
	struct kb_host *h = in->host;
	char why[512];
	int rc = kb_loader_find(h->plugin_path, in->use, &in->file, why, sizeof(why));
	if (rc == 0)
		rc = kb_loader_open(in->file, &in->dl, &in->desc, why, sizeof(why));
	if (rc == 0 && kb_kind_is_extension(in->desc->kind)) {
		snprintf(why, sizeof(why),
		    "kind %s is an extension: its owner loads it, it cannot be listed in plugins",
		    kb_kind_name(in->desc->kind));
		rc = KB_EINVAL;
	}
	if (rc) {
		snprintf(err, errlen, "plugin \"%s\" (%s): %s", in->name,
		    in->file ? in->file : in->use, why);
		return rc;
	}
	return 0;
}

static int inst_init(struct kb_inst *in, char *err, size_t errlen)
{
	struct kb_host *h = in->host;
	struct kb_ident *id = inst_ident(in);
	in->ep = id ? kb_bus_open_local(h->bus, in->name, id, in) : NULL;
	kb_ident_unref(id);
	if (in->ep == NULL) {
		fail_line(in, "cannot open its bus endpoint", KB_ENOMEM, err, errlen);
		return KB_ENOMEM;
	}
	in->hctx.ctx.api = &kb_host_api_table;
	in->hctx.ep = in->ep;
	in->hctx.owner = in;
	in->hctx.name = in->name;
	in->phase = PH_INIT;
	int rc = in->desc->init(&in->hctx.ctx, in->conf, &in->state);
	if (rc) {
		fail_line(in, "init failed", rc, err, errlen);
		return rc;
	}
	in->phase = PH_READY;
	return 0;
}

static int inst_start(struct kb_inst *in, char *err, size_t errlen)
{
	int rc;
	if (in->isolate) {
		char why[512] = "";
		rc = kb_child_start(in, why, sizeof(why));
		if (rc) {
			snprintf(in->fail, sizeof(in->fail), "%s", why);
			fail_line(in, "isolated start failed", rc, err, errlen);
			return rc;
		}
		in->phase = PH_STARTED;
		return 0;
	}
	rc = in->desc->start ? in->desc->start(&in->hctx.ctx, in->state) : 0;
	if (rc) {
		fail_line(in, "start failed", rc, err, errlen);
		return rc;
	}
	in->phase = PH_STARTED;
	kb_clog(KB_LOG_INFO, "plugin started", "instance=%s plugin=%s kind=%s",
	    in->name, in->desc->name, kb_kind_name(in->desc->kind));
	return 0;
}

static bool inst_selected(struct kb_host *h, struct kb_inst *in)
{
	return h->only_instance == NULL || strcmp(h->only_instance, in->name) == 0;
}

int kb_host_start(struct kb_host *h, char *err, size_t errlen)
{
	int rc;
	h->net = kb_net_new(h);
	if (h->net == NULL) {
		snprintf(err, errlen, "cannot start the network");
		return KB_ENOMEM;
	}
	if ((rc = kb_join_prepare(h, err, errlen)))
		goto out_stop;
	for (size_t i = 0; h->listen && h->listen[i]; i++)
		if ((rc = kb_net_listen(h->net, h->listen[i], err, errlen)))
			goto out_stop;
	if (h->join && (rc = kb_net_join(h->net, (const char *const *)h->join,
	                     h->join_token, err, errlen)))
		goto out_stop;
	if (h->only_instance) {
		bool found = false;
		for (size_t i = 0; i < h->ninsts; i++)
			if (inst_selected(h, &h->insts[i]))
				found = true;
		if (!found) {
			snprintf(err, errlen, "no plugin instance named \"%s\"", h->only_instance);
			rc = KB_ENOENT;
			goto out_stop;
		}
	}
	for (size_t i = 0; i < h->ninsts; i++) {
		struct kb_inst *in = &h->insts[i];
		if (!inst_selected(h, in))
			continue;
		if ((rc = inst_load(in, err, errlen)))
			goto out_stop;
		/* In a child the isolated instance runs here, in-process. */
		if (h->only_instance)
			in->isolate = false;
		if (!in->isolate && (rc = inst_init(in, err, errlen)))
			goto out_stop;
	}
	for (size_t i = 0; i < h->ninsts; i++) {
		struct kb_inst *in = &h->insts[i];
		if (in->desc && (rc = inst_start(in, err, errlen)))
			goto out_stop;
	}
	if (h->join)
		kb_net_uplink_ready(h->net);
	return 0;
out_stop:
	kb_host_stop(h);
	return rc;
}

void kb_host_stop(struct kb_host *h)
{
	h->stopping = true;
	for (size_t i = h->ninsts; i-- > 0;) {
		struct kb_inst *in = &h->insts[i];
		if (in->phase != PH_STARTED)
			continue;
		if (in->isolate)
			kb_child_stop(in);
		else if (in->desc->stop)
			in->desc->stop(&in->hctx.ctx, in->state);
		in->phase = PH_STOPPED;
		kb_clog(KB_LOG_INFO, "plugin stopped", "instance=%s", in->name);
	}
	/* Nothing talks to the network any more once plugins are stopped. */
	kb_net_free(h->net);
	h->net = NULL;
	for (size_t i = h->ninsts; i-- > 0;) {
		struct kb_inst *in = &h->insts[i];
		if (in->ep) {
			in->hctx.ep = NULL;
			kb_bus_close(in->ep);
			in->ep = NULL;
		}
		if (in->phase >= PH_READY && in->desc->fini)
			in->desc->fini(in->state);
		in->state = NULL;
		in->phase = PH_NEW;
	}
}

void kb_host_free(struct kb_host *h)
{
	if (h == NULL)
		return;
	if (h->net)
		kb_host_stop(h);
	for (size_t i = 0; i < h->nclients; i++) {
		struct kb_inst *c = &h->clients[i];
		free(c->name);
	}
	kb_bus_free(h->bus); /* closes clients' and the core's endpoints */
	free(h->clients);
	for (size_t i = 0; i < h->ninsts; i++) {
		struct kb_inst *in = &h->insts[i];
		if (in->dl)
			dlclose(in->dl);
		free(in->name);
		free(in->use);
		free(in->file);
	}
	free(h->insts);
	kb_auth_free(h->auth);
	kb_conf_free(h->conf);
	free(h->config_file);
	free(h->name);
	free(h->data_dir);
	free(h->plugin_path);
	free_list(h->listen);
	free_list(h->join);
	free(h->join_token);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	free(h->tls_server_name);
	free(h->token_file);
	free(h->only_instance);
	free(h->argv0);
	free_list(h->sets);
	free(h);
}

kb_ctx *kb_host_client(struct kb_host *h, const char *name, const char *user,
    const char *const *groups, size_t ngroups)
{
	/* Clients live in a fixed array so their addresses stay put. */
	if (h->clients == NULL && (h->clients = calloc(64, sizeof(*h->clients))) == NULL)
		return NULL;
	if (h->nclients == 64)
		return NULL;
	struct kb_inst *c = &h->clients[h->nclients];
	struct kb_ident *id = kb_ident_new(name, user, "", groups, ngroups);
	if (id == NULL)
		return NULL;
	c->host = h;
	c->name = strdup(name);
	c->phase = PH_INIT; /* clients may serve at any time */
	c->ep = kb_bus_open_local(h->bus, name, id, c);
	kb_ident_unref(id);
	if (c->ep == NULL) {
		free(c->name);
		return NULL;
	}
	h->nclients++;
	return kb_ep_ctx(c->ep);
}

/* --- the host API table --------------------------------------------------------------- */

static struct kb_inst *ctx_inst(kb_ctx *ctx)
{
	return ((struct kb_hctx *)ctx)->owner;
}

static const char *api_instance(kb_ctx *ctx) { return ((struct kb_hctx *)ctx)->name; }
static const char *api_host_name(kb_ctx *ctx) { return ctx_inst(ctx)->host->name; }
static const char *api_data_dir(kb_ctx *ctx) { return ctx_inst(ctx)->host->data_dir; }
static const char *api_plugin_path(kb_ctx *ctx) { return ctx_inst(ctx)->host->plugin_path; }

static void api_log(kb_ctx *ctx, int level, const char *msg, const char *kv)
{
	kb_log_line(level, ((struct kb_hctx *)ctx)->name, msg, kv);
}

static int api_log_enabled(kb_ctx *ctx, int level)
{
	return level <= kb_log_level;
}

static int serve_as(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg,
    bool inline_ok)
{
	struct kb_inst *in = ctx_inst(ctx);
	struct kb_endpoint *ep = kb_ctx_ep(ctx);
	if (in == NULL || in->phase != PH_INIT || ep == NULL)
		return KB_ESTATE; /* services are registered during init only */
	return inline_ok ? kb_bus_serve_inline(ep, service, fn, arg)
			 : kb_bus_serve(ep, service, fn, arg);
}

static int api_serve(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg)
{
	return serve_as(ctx, service, fn, arg, false);
}

static int api_serve_inline(kb_ctx *ctx, const char *service, kb_serve_fn fn,
    void *arg)
{
	return serve_as(ctx, service, fn, arg, true);
}

static int api_request(kb_ctx *ctx, const char *service, const char *op,
    kb_body *body, int timeout_ms, kb_reply_fn fn, void *arg)
{
	struct kb_endpoint *ep = kb_ctx_ep(ctx);
	if (ep == NULL)
		return KB_ECLOSED;
	return kb_bus_request(ep, NULL, service, op, body, timeout_ms, fn, arg);
}

static int api_subscribe(kb_ctx *ctx, const char *pattern, kb_sub_fn fn, void *arg)
{
	struct kb_endpoint *ep = kb_ctx_ep(ctx);
	if (ep == NULL)
		return KB_ECLOSED;
	int rc = kb_bus_subscribe(ep, pattern, fn, arg);
	struct kb_inst *in = ctx_inst(ctx);
	if (rc == 0 && in && in->host->net)
		kb_net_uplink_sub(in->host->net, pattern);
	return rc;
}

static int api_unsubscribe(kb_ctx *ctx, const char *pattern)
{
	struct kb_endpoint *ep = kb_ctx_ep(ctx);
	return ep ? kb_bus_unsubscribe(ep, pattern) : KB_ECLOSED;
}

static int api_publish(kb_ctx *ctx, const char *topic, kb_body *body)
{
	struct kb_endpoint *ep = kb_ctx_ep(ctx);
	return ep ? kb_bus_publish(ep, NULL, topic, body) : KB_ECLOSED;
}

static void api_fail(kb_ctx *ctx, const char *reason)
{
	struct kb_inst *in = ctx_inst(ctx);
	if (in)
		snprintf(in->fail, sizeof(in->fail), "%s", reason);
	kb_log_line(KB_LOG_ERROR, ((struct kb_hctx *)ctx)->name, reason, NULL);
}

struct ext_priv {
	struct kb_ext ext;
	struct kb_hctx h;
	void *dl;
};

static int api_ext_load(kb_ctx *ctx, int kind, const char *name,
    const kb_conf *conf, struct kb_ext **out)
{
	struct kb_inst *in = ctx_inst(ctx);
	struct kb_hctx *owner = (struct kb_hctx *)ctx;
	char why[512], *file = NULL;
	void *dl = NULL;
	const struct kb_plugin *desc = NULL;
	int rc = kb_loader_find(in->host->plugin_path, name, &file, why, sizeof(why));
	if (rc == 0)
		rc = kb_loader_open(file, &dl, &desc, why, sizeof(why));
	if (rc == 0 && desc->kind != kind) {
		snprintf(why, sizeof(why), "it is a %s, not a %s",
		    kb_kind_name(desc->kind), kb_kind_name(kind) ? kb_kind_name(kind) : "?");
		rc = KB_EINVAL;
	}
	struct ext_priv *e = rc ? NULL : calloc(1, sizeof(*e));
	if (rc == 0 && e == NULL)
		rc = KB_ENOMEM;
	if (rc == 0) {
		char ename[256];
		snprintf(ename, sizeof(ename), "%s/%s", owner->name, desc->name);
		e->h.ctx.api = &kb_host_api_table;
		e->h.parent = owner->parent ? owner->parent : owner;
		e->h.owner = in;
		e->h.name = strdup(ename);
		e->dl = dl;
		e->ext.plugin = desc;
		e->ext.ops = desc->ops;
		e->ext.ctx = &e->h.ctx;
		in->fail[0] = '\0';
		rc = desc->init ? desc->init(&e->h.ctx, conf, &e->ext.state) : 0;
		if (rc)
			snprintf(why, sizeof(why), "init failed: %.400s",
			    in->fail[0] ? in->fail : kb_strerror(rc));
	}
	if (rc) {
		kb_fail(ctx, rc, "extension %s (%s): %s", name, file ? file : name, why);
		if (e)
			free(e->h.name);
		free(e);
		if (dl)
			dlclose(dl);
		free(file);
		return rc;
	}
	free(file);
	*out = &e->ext;
	return 0;
}

static void api_ext_unload(kb_ctx *ctx, struct kb_ext *ext)
{
	if (ext == NULL)
		return;
	struct ext_priv *e = (struct ext_priv *)ext;
	if (ext->plugin->fini)
		ext->plugin->fini(ext->state);
	free(e->h.name);
	dlclose(e->dl);
	free(e);
}

const struct kb_host_api kb_host_api_table = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = api_instance,
	.host_name = api_host_name,
	.data_dir = api_data_dir,
	.log = api_log,
	.log_enabled = api_log_enabled,
	.serve = api_serve,
	.serve_inline = api_serve_inline,
	.request = api_request,
	.reply = kb_bus_reply,
	.subscribe = api_subscribe,
	.unsubscribe = api_unsubscribe,
	.publish = api_publish,
	.ext_load = api_ext_load,
	.ext_unload = api_ext_unload,
	.plugin_path = api_plugin_path,
	.fail = api_fail,
};
