/* core/host.h — a running host: its config, plugins, bus, network. */
#ifndef KUBUS_CORE_HOST_H
#define KUBUS_CORE_HOST_H

#include <stdbool.h>
#include <sys/types.h>

#include <kubus/kubus.h>

#include "bus.h"

struct kb_net;
struct kb_child;

enum inst_phase { PH_NEW, PH_INIT, PH_READY, PH_STARTED, PH_STOPPED };

struct kb_inst {
	struct kb_host *host;
	char *name;                  /* instance name (unique) */
	char *use;                   /* plugin name or path as written */
	char *file;                  /* resolved .so path */
	void *dl;
	const struct kb_plugin *desc;
	const kb_conf *conf;         /* borrowed from the host's tree */
	const kb_conf *node;         /* the plugins[i] entry, for positions */
	bool isolate;
	int phase;
	struct kb_endpoint *ep;
	struct kb_hctx hctx;         /* the plugin's context; outlives ep */
	void *state;
	char fail[512];
	struct kb_child *child;      /* isolated: its supervisor */
};

struct kb_host_opts {
	const char *config_file;     /* or: */
	const char *config_text;     /* YAML text, file name "<config>" */
	const char *data_dir;        /* overrides host.data_dir */
	const char *plugin_path;     /* overrides host.plugin_path */
	const char *const *sets;     /* "key.path=value", NULL-terminated */
	/* child mode: run only this instance, joined to `join` */
	const char *only_instance;
	const char *join_url;
	const char *join_token;
	const char *argv0;           /* to spawn isolated children */
};

struct kb_host {
	kb_conf *conf;
	char *config_file;           /* absolute path, for children */
	char *name;
	char *data_dir;
	char *plugin_path;
	char **listen;               /* bus listen URLs */
	char **join;                 /* uplink URLs, NULL-terminated (or NULL) */
	char *join_token;
	char *tls_cert, *tls_key, *tls_ca, *tls_server_name;
	int64_t max_message;
	int64_t timeout_ms;
	int64_t keepalive_ms;         /* uplink ping interval; 0: none */
	int64_t keepalive_timeout_ms; /* silence before the uplink is dropped */
	char *token_file;
	const kb_conf *policy, *rbac;
	struct kb_auth *auth;
	struct kb_bus *bus;
	struct kb_net *net;
	struct kb_endpoint *core_ep;  /* "kubus": serves `auth` */
	struct kb_inst *insts;
	size_t ninsts;
	struct kb_inst *clients;      /* test clients (kbt_client) */
	size_t nclients;
	char *only_instance;
	char *argv0;
	char **sets;                  /* kept for children */
	bool stopping;
};

/* Parse the config and set up auth and the bus; nothing is loaded yet.
 * On error returns NULL with a one-line reason in err. */
struct kb_host *kb_host_new(const struct kb_host_opts *o, char *err,
    size_t errlen);
/* Load, init and start every plugin in config order; listen and join.
 * On error everything started is stopped again, and err names the plugin,
 * its file and the reason. */
int kb_host_start(struct kb_host *h, char *err, size_t errlen);
/* Stop plugins in reverse order and close the network. */
void kb_host_stop(struct kb_host *h);
void kb_host_free(struct kb_host *h);

/* An extra in-process endpoint (tests, tools) with the given identity. */
kb_ctx *kb_host_client(struct kb_host *h, const char *name, const char *user,
    const char *const *groups, size_t ngroups);

/* The host API table (host.c). */
extern const struct kb_host_api kb_host_api_table;

/* loader.c */
int kb_loader_find(const char *plugin_path, const char *use, char **file,
    char *err, size_t errlen);
int kb_loader_open(const char *file, void **dl, const struct kb_plugin **desc,
    char *err, size_t errlen);
/* `kubus plugins`: describe every kubus-*.so on the path. */
int kb_loader_list(const char *plugin_path, FILE *out);

/* supervise.c: isolated plugins */
int kb_child_start(struct kb_inst *in, char *err, size_t errlen);
void kb_child_stop(struct kb_inst *in);
/* conn.c tells the supervisor a child finished registering. */
void kb_child_ready(struct kb_host *h, const char *principal);

#endif
