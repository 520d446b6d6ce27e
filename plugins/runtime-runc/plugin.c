/* plugins/runtime-runc/plugin.c — the descriptor and config of the runc
 * runtime (kind runtime: loaded by the kubelet with kb_ext_load).
 *
 *   runtime: runtime-runc
 *   runtime_config:
 *     runc: runc                 # or /usr/bin/crun: a drop-in
 *     root: DATA_DIR/runc        # runc --root
 *     state_dir: DATA_DIR/runtime-runc
 *     images: DATA_DIR/images    # the OCI image store
 *     preload: <so dir>/../images  # *.tar imported at init when missing
 *     cgroup_parent: /kubus
 *     shim: <so dir>/kubus-runc-shim
 *     local_images: {name: /a/rootfs}  # images that are plain directories
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rr.h"

struct cfg {
	char *runc, *root, *state_dir, *images, *preload, *cgroup_parent;
	char *shim;
	const kb_conf *local_images;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("runc", struct cfg, runc, "runc",
	    "the runc binary (a path or a name on PATH; crun works too)"),
	KB_OPT_STR("root", struct cfg, root, NULL,
	    "runc --root state dir (default DATA_DIR/runc)"),
	KB_OPT_STR("state_dir", struct cfg, state_dir, NULL,
	    "bundles and records (default DATA_DIR/runtime-runc)"),
	KB_OPT_STR("images", struct cfg, images, NULL,
	    "the OCI image store (default DATA_DIR/images)"),
	KB_OPT_STR("preload", struct cfg, preload, NULL,
	    "dir of NAME.tar oci-archives imported at init when NAME is "
	    "missing (default: images/ beside the plugin dir)"),
	KB_OPT_STR("cgroup_parent", struct cfg, cgroup_parent, "/kubus",
	    "cgroups are <cgroup_parent>/<pod-uid>/<container-id>"),
	KB_OPT_STR("shim", struct cfg, shim, NULL,
	    "kubus-runc-shim (default: beside this plugin)"),
	KB_OPT_NODE("local_images", struct cfg, local_images,
	    "image name -> a root filesystem directory"),
	KB_OPT_END,
};

/* The directory of this .so (for the shim and the preload dir). */
static void so_dir(char *out, size_t len)
{
	Dl_info info;
	*out = '\0';
	if (dladdr((void *)so_dir, &info) == 0 || info.dli_fname == NULL)
		return;
	char buf[PATH_MAX];
	if (realpath(info.dli_fname, buf) == NULL)
		snprintf(buf, sizeof(buf), "%s", info.dli_fname);
	snprintf(out, len, "%s", dirname(buf));
}

/* A name without '/' is looked up on PATH, once, so that the shim and
 * every spawn use the same file. */
static char *find_binary(const char *name)
{
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? strdup(name) : NULL;
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	if (path == NULL || *path == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		       "/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n &&
		    snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name) <
			(int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return strdup(buf);
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}

static char *dflt(char *v, const char *data_dir, const char *sub)
{
	if (v)
		return v;
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s/%s", data_dir, sub);
	return strdup(buf);
}

static void rr_free(struct rr *r)
{
	if (r == NULL)
		return;
#ifdef KUBUS_HAVE_IMAGE
	if (r->store)
		kb_image_close(r->store);
#endif
	for (size_t i = 0; i < r->nlocal; i++) {
		free(r->local[i].name);
		free(r->local[i].dir);
	}
	free(r->local);
	free(r->runc);
	free(r->runc_name);
	free(r->root);
	free(r->state_dir);
	free(r->images);
	free(r->preload);
	free(r->cgroup_parent);
	free(r->shim);
	free(r);
}

static int load_local(struct rr *r, const kb_conf *l, char *err, size_t errlen)
{
	if (l == NULL || kb_conf_type(l) == KB_CONF_NULL)
		return 0;
	if (kb_conf_type(l) != KB_CONF_MAP) {
		snprintf(err, errlen,
		    "%s:%d: local_images must be a map of "
		    "name: directory",
		    kb_conf_file(l), kb_conf_line(l));
		return KB_EINVAL;
	}
	size_t n = kb_conf_len(l);
	r->local = calloc(n ? n : 1, sizeof(*r->local));
	if (r->local == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const kb_conf *v = kb_conf_at(l, i);
		const char *dir = kb_conf_str(v);
		if (dir == NULL || dir[0] != '/') {
			snprintf(err, errlen,
			    "%s:%d: local_images.%s must be "
			    "an absolute directory path",
			    kb_conf_file(v), kb_conf_line(v),
			    kb_conf_key_at(l, i));
			return KB_EINVAL;
		}
		r->local[i].name = strdup(kb_conf_key_at(l, i));
		r->local[i].dir = strdup(dir);
		r->nlocal++;
		if (!r->local[i].name || !r->local[i].dir)
			return KB_ENOMEM;
	}
	return 0;
}

/* "runc version 1.1.5+ds1" -> "1.1.5+ds1" (crun prints the same way). */
static void read_version(struct rr *r)
{
	const char *argv[] = { r->runc, "--version", NULL };
	char out[1024];
	int ws = 0;
	snprintf(r->version, sizeof(r->version), "unknown");
	if (rr_run(argv, 10000, &ws, out, sizeof(out), NULL) != 0)
		return;
	char *v = strstr(out, "version ");
	if (v) {
		v += 8;
		snprintf(r->version, sizeof(r->version), "%.*s",
		    (int)strcspn(v, " \n"), v);
	}
}

static int rr_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512] = "";
	struct cfg c = { 0 };
	if (kb_conf_opts(conf, opts, &c, "runtime-runc", err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct rr *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		kb_conf_opts_free(opts, &c);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	r->ctx = ctx;
	const char *dd = KB_HOST_HAS(ctx, data_dir) ? kb_data_dir(ctx) : NULL;
	if (dd == NULL || *dd == '\0')
		dd = "/var/lib/kubus";
	char sodir[PATH_MAX], buf[PATH_MAX + 32];
	so_dir(sodir, sizeof(sodir));
	r->runc = find_binary(c.runc);
	r->runc_name =
	    strdup(strrchr(c.runc, '/') ? strrchr(c.runc, '/') + 1 : c.runc);
	r->root = dflt(c.root, dd, "runc");
	r->state_dir = dflt(c.state_dir, dd, "runtime-runc");
	r->images = dflt(c.images, dd, "images");
	if (c.preload == NULL && *sodir) {
		snprintf(buf, sizeof(buf), "%s/../images", sodir);
		c.preload = strdup(buf);
	}
	r->preload = c.preload;
	r->cgroup_parent = c.cgroup_parent;
	if (c.shim == NULL && *sodir) {
		snprintf(buf, sizeof(buf), "%s/kubus-runc-shim", sodir);
		c.shim = strdup(buf);
	}
	r->shim = c.shim;
	c.root = c.state_dir = c.images = c.preload = c.cgroup_parent = NULL;
	c.shim = NULL;
	int rc = load_local(r, c.local_images, err, sizeof(err));
	kb_conf_opts_free(opts, &c);
	if (rc) {
		rr_free(r);
		return kb_fail(ctx, rc, "%s", err);
	}
	if (r->runc == NULL) {
		rr_free(r);
		return kb_fail(ctx, KB_ENOENT,
		    "runc binary not found "
		    "(config runc, PATH)");
	}
	if (r->shim == NULL || access(r->shim, X_OK) != 0) {
		rc = kb_fail(ctx, KB_ENOENT,
		    "the shim %s is missing or not "
		    "executable (config shim)",
		    r->shim ? r->shim : "?");
		rr_free(r);
		return rc;
	}
	if (r->cgroup_parent == NULL || r->cgroup_parent[0] != '/' ||
	    strstr(r->cgroup_parent, "..")) {
		rr_free(r);
		return kb_fail(ctx, KB_EINVAL,
		    "cgroup_parent must be an "
		    "absolute cgroup path");
	}
	r->cgroup2 = rr_cgroup2_only();
	const char *dirs[] = { r->root, r->state_dir, NULL, NULL, NULL };
	char sbd[PATH_MAX], cd[PATH_MAX], nd[PATH_MAX];
	snprintf(sbd, sizeof(sbd), "%s/sandboxes", r->state_dir);
	snprintf(cd, sizeof(cd), "%s/containers", r->state_dir);
	snprintf(nd, sizeof(nd), "%s/netns", r->state_dir);
	dirs[2] = sbd;
	dirs[3] = cd;
	dirs[4] = nd;
	for (size_t i = 0; i < 5; i++)
		if (rr_mkdirs(dirs[i], 0700) != 0) {
			rc = kb_fail(ctx, KB_ESYS, "cannot make %s: %s",
			    dirs[i], strerror(errno));
			rr_free(r);
			return rc;
		}
#ifdef KUBUS_HAVE_IMAGE
	if (kb_image_open(r->images, &r->store, err, sizeof(err)) != 0) {
		rc = kb_fail(ctx, KB_ESYS, "cannot open the image store %s: %s",
		    r->images, err);
		rr_free(r);
		return rc;
	}
	rr_image_preload(r);
#endif
	rr_sweep_partial(r);
	read_version(r);
	*state = r;
	return 0;
}

static void rr_fini(void *state)
{
	rr_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "runtime-runc",
		.version = "0.1.0",
		.description = "real containers through runc (or crun): OCI "
			       "bundles on overlayfs, CRI logs via a shim",
		.kind = KB_KIND_RUNTIME,
		.init = rr_init,
		.fini = rr_fini,
		.ops = &rr_ops,
	};
	return &p;
}
