/* image/store.c — the store itself: open, index.json, list, present,
 * remove with garbage collection of blobs and rootfs dirs, and resolving a
 * reference to its config and unpacked rootfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kubus/strmap.h>

#include "img_internal.h"

int kb_image_open(const char *dir, kb_image_store **out, char *err,
    size_t errlen)
{
	char path[4200];
	*out = NULL;
	if (dir == NULL || *dir == '\0')
		return img_err(err, errlen, KB_EINVAL, "no store directory");
	if (strlen(dir) > 3000)
		return img_err(err, errlen, KB_EINVAL, "%s: path too long",
		    dir);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	if (img_mkdirs(path, 0755) != 0)
		return img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (mkdir(path, 0711) != 0 && errno != EEXIST)
		return img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));
	snprintf(path, sizeof(path), "%s/tmp", dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));

	kb_image_store *st = calloc(1, sizeof(*st));
	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		return img_err(err, errlen, KB_ENOMEM, "out of memory");
	}
	int fd = img_lock(st, LOCK_EX, err, errlen);
	if (fd < 0) {
		kb_image_close(st);
		return KB_ESYS;
	}
	int rc = 0;
	snprintf(path, sizeof(path), "%s/oci-layout", dir);
	if (access(path, F_OK) != 0) {
		static const char layout[] =
		    "{\"imageLayoutVersion\":\"1.0.0\"}";
		rc = img_write_file(path, layout, sizeof(layout) - 1, err,
		    errlen);
	}
	snprintf(path, sizeof(path), "%s/index.json", dir);
	if (rc == 0 && access(path, F_OK) != 0) {
		static const char index[] =
		    "{\"schemaVersion\":2,\"manifests\":[]}";
		rc =
		    img_write_file(path, index, sizeof(index) - 1, err, errlen);
	}
	img_unlock(fd);
	if (rc) {
		kb_image_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void kb_image_close(kb_image_store *st)
{
	if (st == NULL)
		return;
	free(st->dir);
	free(st);
}

void img_clean_tmp(kb_image_store *st)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/tmp", st->dir);
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			img_rmrf_at(dirfd(d), de->d_name);
	closedir(d);
	snprintf(path, sizeof(path), "%s/rootfs", st->dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, ".tmp-", 5))
			img_rmrf_at(dirfd(d), de->d_name);
	closedir(d);
}

int img_index_load(kb_image_store *st, json_t **out, char *err, size_t errlen)
{
	char path[4200], *buf;
	size_t n;
	snprintf(path, sizeof(path), "%s/index.json", st->dir);
	int rc = img_read_file(path, IMG_JSON_MAX, &buf, &n, err, errlen);
	if (rc == KB_ENOTFOUND) {
		*out = json_pack("{s:i,s:[]}", "schemaVersion", 2, "manifests");
		return *out ? 0 :
			      img_err(err, errlen, KB_ENOMEM, "out of memory");
	}
	if (rc)
		return rc;
	rc = img_json_parse(buf, n, path, out, err, errlen);
	free(buf);
	if (rc)
		return rc;
	if (!json_is_array(json_object_get(*out, "manifests"))) {
		json_decref(*out);
		*out = NULL;
		return img_err(err, errlen, KB_EINVAL,
		    "%s: no \"manifests\" array", path);
	}
	return 0;
}

int img_index_save(kb_image_store *st, json_t *index, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/index.json", st->dir);
	char *text = json_dumps(index, JSON_COMPACT);
	if (text == NULL)
		return img_err(err, errlen, KB_ENOMEM, "out of memory");
	int rc = img_write_file(path, text, strlen(text), err, errlen);
	free(text);
	return rc;
}

const char *img_desc_ref(json_t *desc)
{
	return json_string_value(
	    json_object_get(json_object_get(desc, "annotations"),
		IMG_REF_ANNOTATION));
}

void img_index_put(json_t *index, const char *ref, json_t *mdesc)
{
	json_t *mans = json_object_get(index, "manifests"), *d;
	size_t i;
	json_array_foreach(mans, i, d) {
		const char *r = img_desc_ref(d);
		if (r && !strcmp(r, ref)) {
			json_array_remove(mans, i);
			break;
		}
	}
	json_object_set_new(mdesc, "annotations",
	    json_pack("{s:s}", IMG_REF_ANNOTATION, ref));
	json_array_append_new(mans, mdesc);
}

/* "docker.io/library/busybox:latest" → length of "docker.io/library/busybox" */
static size_t repo_len(const char *ref)
{
	const char *at = strchr(ref, '@');
	if (at)
		return (size_t)(at - ref);
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	return colon ? (size_t)(colon - ref) : strlen(ref);
}

json_t *img_index_find(json_t *index, const char *normref)
{
	json_t *mans = json_object_get(index, "manifests"), *d;
	size_t i;
	const char *at = strchr(normref, '@');
	json_array_foreach(mans, i, d) {
		const char *r = img_desc_ref(d);
		if (r == NULL)
			continue;
		if (at == NULL) {
			if (!strcmp(r, normref))
				return d;
			continue;
		}
		/* name@digest: any tag of that repository with that manifest. */
		const char *dg =
		    json_string_value(json_object_get(d, "digest"));
		size_t rl = repo_len(normref);
		if (dg && !strcmp(dg, at + 1) && repo_len(r) == rl &&
		    !strncmp(r, normref, rl))
			return d;
	}
	return NULL;
}

/* Size of manifest + config + layers; the config's created. */
static int manifest_summary(kb_image_store *st, json_t *desc,
    struct kb_image_info *info, char *err, size_t errlen)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	json_t *man = NULL, *cfg = NULL;
	int rc = img_blob_json(st, dg, &man, err, errlen);
	if (rc)
		return rc;
	snprintf(info->digest, sizeof(info->digest), "%s", dg);
	info->size = json_integer_value(json_object_get(desc, "size"));
	json_t *c = json_object_get(man, "config"), *l;
	info->size += json_integer_value(json_object_get(c, "size"));
	size_t i;
	json_array_foreach(json_object_get(man, "layers"), i, l)
		info->size += json_integer_value(json_object_get(l, "size"));
	info->created[0] = '\0';
	if (img_blob_json(st, json_string_value(json_object_get(c, "digest")),
		&cfg, NULL, 0) == 0) {
		const char *cr =
		    json_string_value(json_object_get(cfg, "created"));
		if (cr)
			snprintf(info->created, sizeof(info->created), "%s",
			    cr);
		json_decref(cfg);
	}
	json_decref(man);
	return 0;
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kb_image_info *)a)->ref,
	    ((const struct kb_image_info *)b)->ref);
}

int kb_image_list(kb_image_store *st, struct kb_image_info **out, size_t *n,
    char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	int fd = img_lock(st, LOCK_SH, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	json_t *index;
	int rc = img_index_load(st, &index, err, errlen);
	img_unlock(fd);
	if (rc)
		return rc;
	json_t *mans = json_object_get(index, "manifests"), *d;
	struct kb_image_info *v = calloc(json_array_size(mans) + 1, sizeof(*v));
	if (v == NULL) {
		json_decref(index);
		return img_err(err, errlen, KB_ENOMEM, "out of memory");
	}
	size_t i, k = 0;
	json_array_foreach(mans, i, d) {
		const char *r = img_desc_ref(d);
		if (r == NULL)
			continue;
		snprintf(v[k].ref, sizeof(v[k].ref), "%s", r);
		/* A broken entry is listed without its sizes rather than
		 * hiding the others. */
		if (manifest_summary(st, d, &v[k], NULL, 0) != 0)
			snprintf(v[k].digest, sizeof(v[k].digest), "%s",
			    json_string_value(json_object_get(d, "digest")) ?:
									      "");
		k++;
	}
	json_decref(index);
	qsort(v, k, sizeof(*v), info_cmp);
	*out = v;
	*n = k;
	return 0;
}

int kb_image_present(kb_image_store *st, const char *ref, int *present)
{
	char norm[512];
	*present = 0;
	if (kb_image_normalize(ref, norm, sizeof(norm)) != 0)
		return KB_EINVAL;
	int fd = img_lock(st, LOCK_SH, NULL, 0);
	if (fd < 0)
		return KB_ESYS;
	json_t *index;
	int rc = img_index_load(st, &index, NULL, 0);
	img_unlock(fd);
	if (rc)
		return rc;
	*present = img_index_find(index, norm) != NULL;
	json_decref(index);
	return 0;
}

static void mark(struct kb_strmap *m, const char *digest)
{
	if (digest && img_digest_valid(digest))
		kb_strmap_put(m, digest + 7, (void *)1, NULL);
}

int img_gc(kb_image_store *st, json_t *index, char *err, size_t errlen)
{
	struct kb_strmap keep = { 0 }, mans = { 0 };
	json_t *d;
	size_t i;
	json_array_foreach(json_object_get(index, "manifests"), i, d) {
		const char *dg =
		    json_string_value(json_object_get(d, "digest"));
		json_t *man;
		mark(&keep, dg);
		mark(&mans, dg);
		/* An unreadable manifest keeps nothing else: its image is
		 * broken either way. */
		if (img_blob_json(st, dg, &man, NULL, 0) != 0)
			continue;
		mark(&keep,
		    json_string_value(
			json_object_get(json_object_get(man, "config"),
			    "digest")));
		json_t *l;
		size_t j;
		json_array_foreach(json_object_get(man, "layers"), j, l)
			mark(&keep,
			    json_string_value(json_object_get(l, "digest")));
		json_decref(man);
	}
	char path[4200];
	int rc = 0;
	snprintf(path, sizeof(path), "%s/blobs/sha256", st->dir);
	DIR *dir = opendir(path);
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.' ||
			    kb_strmap_get(&keep, de->d_name))
				continue;
			if (unlinkat(dirfd(dir), de->d_name, 0) != 0 &&
			    errno != ENOENT)
				rc = img_err(err, errlen, KB_ESYS, "%s/%s: %s",
				    path, de->d_name, strerror(errno));
		}
		closedir(dir);
	}
	snprintf(path, sizeof(path), "%s/rootfs", st->dir);
	if ((dir = opendir(path)) != NULL) {
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.' ||
			    kb_strmap_get(&mans, de->d_name))
				continue;
			if (img_rmrf_at(dirfd(dir), de->d_name) != 0)
				rc = img_err(err, errlen, KB_ESYS, "%s/%s: %s",
				    path, de->d_name, strerror(errno));
		}
		closedir(dir);
	}
	kb_strmap_clear(&keep, NULL);
	kb_strmap_clear(&mans, NULL);
	return rc;
}

int kb_image_remove(kb_image_store *st, const char *ref, char *err,
    size_t errlen)
{
	char norm[512];
	if (kb_image_normalize(ref, norm, sizeof(norm)) != 0)
		return img_err(err, errlen, KB_EINVAL,
		    "\"%s\" is not a valid image reference", ref ? ref : "");
	int fd = img_lock(st, LOCK_EX, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	json_t *index;
	int rc = img_index_load(st, &index, err, errlen);
	if (rc)
		goto out_unlock;
	json_t *mans = json_object_get(index, "manifests");
	size_t removed = 0;
	json_t *d;
	while ((d = img_index_find(index, norm)) != NULL) {
		size_t i;
		json_t *e;
		json_array_foreach(mans, i, e)
			if (e == d)
				break;
		json_array_remove(mans, i);
		removed++;
	}
	if (removed == 0) {
		rc = img_err(err, errlen, KB_ENOTFOUND, "%s: no such image",
		    norm);
		goto out_index;
	}
	rc = img_index_save(st, index, err, errlen);
	if (rc == 0)
		rc = img_gc(st, index, err, errlen);
out_index:
	json_decref(index);
out_unlock:
	img_unlock(fd);
	return rc;
}

static char **strv_from_json(json_t *a)
{
	if (!json_is_array(a))
		return NULL;
	size_t n = json_array_size(a), i, k = 0;
	char **v = calloc(n + 1, sizeof(char *));
	if (v == NULL)
		return NULL;
	json_t *s;
	json_array_foreach(a, i, s)
		if (json_is_string(s))
			v[k++] = strdup(json_string_value(s));
	return v;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void kb_image_config_free(struct kb_image_config *c)
{
	if (c == NULL)
		return;
	strv_free(c->env);
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	free(c->working_dir);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

static int config_from_json(json_t *cfgdoc, const char *digest,
    struct kb_image_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->digest, sizeof(c->digest), "%s", digest);
	json_t *rc = json_object_get(cfgdoc, "config");
	c->env = strv_from_json(json_object_get(rc, "Env"));
	c->entrypoint = strv_from_json(json_object_get(rc, "Entrypoint"));
	c->cmd = strv_from_json(json_object_get(rc, "Cmd"));
	const char *s = json_string_value(json_object_get(rc, "WorkingDir"));
	if (s && *s)
		c->working_dir = strdup(s);
	s = json_string_value(json_object_get(rc, "User"));
	if (s && *s)
		c->user = strdup(s);
	return 0;
}

/* Resolve norm in the index: its manifest, config document and digest.
 * Lock held. */
static int resolve(kb_image_store *st, const char *norm, json_t **man,
    json_t **cfg, char digest[80], char *err, size_t errlen)
{
	json_t *index;
	int rc = img_index_load(st, &index, err, errlen);
	if (rc)
		return rc;
	json_t *d = img_index_find(index, norm);
	if (d == NULL) {
		json_decref(index);
		return img_err(err, errlen, KB_ENOTFOUND, "%s: no such image",
		    norm);
	}
	snprintf(digest, 80, "%s",
	    json_string_value(json_object_get(d, "digest")) ?: "");
	json_decref(index);
	rc = img_blob_json(st, digest, man, err, errlen);
	if (rc)
		return rc;
	rc = img_blob_json(st,
	    json_string_value(
		json_object_get(json_object_get(*man, "config"), "digest")),
	    cfg, err, errlen);
	if (rc) {
		json_decref(*man);
		*man = NULL;
	}
	return rc;
}

int kb_image_rootfs(kb_image_store *st, const char *ref,
    struct kb_image_config *cfg, char *rootfs, size_t len, char *err,
    size_t errlen)
{
	char norm[512], digest[80], path[4200];
	if (cfg)
		memset(cfg, 0, sizeof(*cfg));
	if (kb_image_normalize(ref, norm, sizeof(norm)) != 0)
		return img_err(err, errlen, KB_EINVAL,
		    "\"%s\" is not a valid image reference", ref ? ref : "");
	json_t *man = NULL, *doc = NULL;
	struct stat sb;
	int fd = img_lock(st, LOCK_SH, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	int rc = resolve(st, norm, &man, &doc, digest, err, errlen);
	if (rc)
		goto out;
	snprintf(path, sizeof(path), "%s/rootfs/%s", st->dir, digest + 7);
	if (stat(path, &sb) != 0) {
		/* Unpack under the exclusive lock; someone may have done it
		 * (or removed the image) in between, so look again. */
		img_unlock(fd);
		json_decref(man);
		json_decref(doc);
		man = doc = NULL;
		if ((fd = img_lock(st, LOCK_EX, err, errlen)) < 0)
			return KB_ESYS;
		rc = resolve(st, norm, &man, &doc, digest, err, errlen);
		if (rc)
			goto out;
		snprintf(path, sizeof(path), "%s/rootfs/%s", st->dir,
		    digest + 7);
		if (stat(path, &sb) != 0) {
			char tmp[4300];
			snprintf(tmp, sizeof(tmp), "%s/rootfs/.tmp-%s", st->dir,
			    digest + 7);
			img_rmrf(tmp);
			if (mkdir(tmp, 0755) != 0) {
				rc = img_err(err, errlen, KB_ESYS, "%s: %s",
				    tmp, strerror(errno));
				goto out;
			}
			rc = img_unpack(st, man, tmp, err, errlen);
			if (rc == 0 && rename(tmp, path) != 0)
				rc = img_err(err, errlen, KB_ESYS, "%s: %s",
				    path, strerror(errno));
			if (rc) {
				img_rmrf(tmp);
				goto out;
			}
		}
	}
	if ((size_t)snprintf(rootfs, len, "%s", path) >= len) {
		rc = img_err(err, errlen, KB_EINVAL,
		    "rootfs path longer than %zu", len);
		goto out;
	}
	if (cfg)
		config_from_json(doc, digest, cfg);
out:
	json_decref(man);
	json_decref(doc);
	img_unlock(fd);
	return rc;
}
