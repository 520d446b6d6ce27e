/* plugins/runtime-runc/image.c — images: the local OCI image store
 * (kubus-image) and the config's `local_images` (a name for a root
 * filesystem directory, for hosts without the store and for tests). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rr.h"

static const struct rr_local_image *local_of(struct rr *r, const char *ref)
{
	for (size_t i = 0; i < r->nlocal; i++)
		if (!strcmp(r->local[i].name, ref))
			return &r->local[i];
	return NULL;
}

static char **strv_dup(char **v)
{
	if (v == NULL)
		return NULL;
	size_t n = 0;
	while (v[n])
		n++;
	char **o = calloc(n + 1, sizeof(*o));
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((o[i] = strdup(v[i])) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(o[j]);
			free(o);
			return NULL;
		}
	return o;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void rr_image_free(struct rr_image *img)
{
	strv_free(img->env);
	strv_free(img->entrypoint);
	strv_free(img->cmd);
	free(img->working_dir);
	free(img->user);
	memset(img, 0, sizeof(*img));
}

int rr_image_resolve(struct rr *r, const char *ref, struct rr_image *img,
    char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	const struct rr_local_image *l = local_of(r, ref);
	if (l) {
		struct stat st;
		if (stat(l->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
			    "local image %s: %s is not a "
			    "directory",
			    ref, l->dir);
			return KB_ENOTFOUND;
		}
		snprintf(img->rootfs, sizeof(img->rootfs), "%s", l->dir);
		return 0;
	}
#ifdef KUBUS_HAVE_IMAGE
	if (r->store == NULL) {
		snprintf(err, errlen, "the image store %s is not open",
		    r->images);
		return KB_EUNAVAILABLE;
	}
	struct kb_image_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int rc = kb_image_rootfs(r->store, ref, &cfg, img->rootfs,
	    sizeof(img->rootfs), err, errlen);
	if (rc)
		return rc;
	snprintf(img->digest, sizeof(img->digest), "%s", cfg.digest);
	img->env = strv_dup(cfg.env);
	img->entrypoint = strv_dup(cfg.entrypoint);
	img->cmd = strv_dup(cfg.cmd);
	img->working_dir = cfg.working_dir ? strdup(cfg.working_dir) : NULL;
	img->user = cfg.user ? strdup(cfg.user) : NULL;
	kb_image_config_free(&cfg);
	return 0;
#else
	(void)strv_dup;
	snprintf(err, errlen,
	    "image %s: not a local image, and this build "
	    "has no image store (kubus-image)",
	    ref);
	return KB_ENOTFOUND;
#endif
}

int rr_image_present(struct rr *r, const char *ref, bool *present)
{
	*present = false;
	if (ref == NULL || *ref == '\0')
		return KB_EINVAL;
	if (local_of(r, ref)) {
		*present = true;
		return 0;
	}
#ifdef KUBUS_HAVE_IMAGE
	if (r->store == NULL)
		return KB_EUNAVAILABLE;
	int p = 0;
	int rc = kb_image_present(r->store, ref, &p);
	if (rc == KB_EINVAL)
		return 0; /* a malformed reference is simply not there */
	if (rc)
		return rc;
	*present = p != 0;
#endif
	return 0;
}

/* Import preload/NAME.tar unless image NAME is already in the store: the
 * file name is the image's name (busybox.tar holds busybox:latest). */
void rr_image_preload(struct rr *r)
{
#ifdef KUBUS_HAVE_IMAGE
	if (r->store == NULL || r->preload == NULL || *r->preload == '\0')
		return;
	DIR *d = opendir(r->preload);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= 4 || strcmp(e->d_name + n - 4, ".tar"))
			continue;
		char ref[256];
		snprintf(ref, sizeof(ref), "%.*s", (int)(n - 4), e->d_name);
		int p = 0;
		if (kb_image_present(r->store, ref, &p) == 0 && p)
			continue;
		char path[PATH_MAX], err[512] = "";
		snprintf(path, sizeof(path), "%s/%s", r->preload, e->d_name);
		int rc =
		    kb_image_import(r->store, path, NULL, err, sizeof(err));
		if (rc)
			kb_warn(r->ctx, "cannot preload an image",
			    "file=%s err=\"%s\"", path, err);
		else
			kb_info(r->ctx, "preloaded an image", "file=%s", path);
	}
	closedir(d);
#else
	(void)r;
#endif
}
