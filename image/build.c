/* image/build.c — a one-layer image from a directory tree
 * (kb_image_build), and an image out of the store as an oci-archive tar
 * (kb_image_export). The layer is written as an uncompressed tar first
 * (its hash is the config's diff_id), then gzip'd into the blob. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "img_internal.h"

struct writer {
	int fd;
	struct img_hash h;
};

static la_ssize_t write_cb(struct archive *a, void *arg, const void *p,
    size_t n)
{
	struct writer *w = arg;
	const char *c = p;
	size_t left = n;
	while (left) {
		ssize_t r = write(w->fd, c, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			archive_set_error(a, errno, "write: %s",
			    strerror(errno));
			return -1;
		}
		c += r;
		left -= (size_t)r;
	}
	img_hash_update(&w->h, p, n);
	return (la_ssize_t)n;
}

struct hardlink {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct tree {
	struct archive *a;
	struct hardlink *links;
	size_t nlinks;
	const char *root;
	char *err;
	size_t errlen;
};

static int copy_data(struct tree *t, const char *full, const char *rel)
{
	int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return img_err(t->err, t->errlen, KB_ESYS, "%s: %s", full,
		    strerror(errno));
	char buf[1 << 16];
	ssize_t n;
	int rc = 0;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = img_err(t->err, t->errlen, KB_ESYS, "%s: %s", full,
			    strerror(errno));
			break;
		}
		if (archive_write_data(t->a, buf, (size_t)n) != n) {
			rc = img_err(t->err, t->errlen, KB_ESYS, "%s: %s", rel,
			    archive_error_string(t->a) ?: "write failed");
			break;
		}
	}
	close(fd);
	return rc;
}

/* Add rel (relative to the root; "" is the root) and what is below it. */
static int add_tree(struct tree *t, const char *rel)
{
	char full[4200];
	snprintf(full, sizeof(full), "%s%s%s", t->root, *rel ? "/" : "", rel);
	struct stat sb;
	if (lstat(full, &sb) != 0)
		return img_err(t->err, t->errlen, KB_ESYS, "%s: %s", full,
		    strerror(errno));
	if (S_ISSOCK(sb.st_mode))
		return 0;
	int rc = 0;
	if (*rel) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_copy_stat(e, &sb);
		archive_entry_set_pathname(e, rel);
		/* Images are root's: as Docker's COPY without --chown. */
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname(e, "root");
		archive_entry_set_gname(e, "root");
		archive_entry_unset_atime(e);
		archive_entry_unset_ctime(e);
		bool data = S_ISREG(sb.st_mode);
		if (S_ISLNK(sb.st_mode)) {
			char target[4096];
			ssize_t n = readlink(full, target, sizeof(target) - 1);
			if (n < 0) {
				archive_entry_free(e);
				return img_err(t->err, t->errlen, KB_ESYS,
				    "%s: %s", full, strerror(errno));
			}
			target[n] = '\0';
			archive_entry_set_symlink(e, target);
		} else if (S_ISREG(sb.st_mode) && sb.st_nlink > 1) {
			for (size_t i = 0; i < t->nlinks; i++)
				if (t->links[i].dev == sb.st_dev &&
				    t->links[i].ino == sb.st_ino) {
					archive_entry_set_hardlink(e,
					    t->links[i].path);
					archive_entry_set_size(e, 0);
					data = false;
					break;
				}
			if (data) {
				struct hardlink *nl = realloc(t->links,
				    (t->nlinks + 1) * sizeof(*nl));
				if (nl) {
					t->links = nl;
					nl[t->nlinks].dev = sb.st_dev;
					nl[t->nlinks].ino = sb.st_ino;
					nl[t->nlinks].path = strdup(rel);
					if (nl[t->nlinks].path)
						t->nlinks++;
				}
			}
		}
		if (archive_write_header(t->a, e) != ARCHIVE_OK)
			rc = img_err(t->err, t->errlen, KB_EINVAL, "%s: %s",
			    rel,
			    archive_error_string(t->a) ?: "cannot archive");
		archive_entry_free(e);
		if (rc == 0 && data)
			rc = copy_data(t, full, rel);
		if (rc)
			return rc;
	}
	if (!S_ISDIR(sb.st_mode))
		return 0;
	struct dirent **names;
	int n = scandir(full, &names, NULL, alphasort);
	if (n < 0)
		return img_err(t->err, t->errlen, KB_ESYS, "%s: %s", full,
		    strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		if (rc == 0 && strcmp(nm, ".") && strcmp(nm, "..")) {
			char child[4200];
			if ((size_t)snprintf(child, sizeof(child), "%s%s%s",
				rel, *rel ? "/" : "", nm) >= sizeof(child))
				rc = img_err(t->err, t->errlen, KB_EINVAL,
				    "%s/%s: path too long", full, nm);
			else
				rc = add_tree(t, child);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* The tree as a tar in tmp (diff_id), then gzip'd into the store (digest,
 * size). */
static int make_layer(kb_image_store *st, const char *rootdir, char diff_id[80],
    char digest[80], int64_t *size, char *err, size_t errlen)
{
	char tar[4200], gz[4200], path[4200];
	snprintf(tar, sizeof(tar), "%s/tmp/layer-XXXXXX", st->dir);
	snprintf(gz, sizeof(gz), "%s/tmp/layergz-XXXXXX", st->dir);
	struct writer w = { .fd = mkstemp(tar) };
	if (w.fd < 0)
		return img_err(err, errlen, KB_ESYS, "%s: %s", tar,
		    strerror(errno));
	struct writer z = { .fd = mkstemp(gz) };
	if (z.fd < 0) {
		close(w.fd);
		unlink(tar);
		return img_err(err, errlen, KB_ESYS, "%s: %s", gz,
		    strerror(errno));
	}
	int rc = img_hash_init(&w.h);
	if (rc == 0)
		rc = img_hash_init(&z.h);
	struct tree t = { .root = rootdir, .err = err, .errlen = errlen };
	if (rc) {
		rc = img_err(err, errlen, KB_ENOMEM, "out of memory");
		goto out;
	}
	t.a = archive_write_new();
	archive_write_set_format_pax_restricted(t.a);
	archive_write_set_bytes_in_last_block(t.a, 1);
	if (archive_write_open(t.a, &w, NULL, write_cb, NULL) != ARCHIVE_OK) {
		rc = img_err(err, errlen, KB_ESYS, "layer: %s",
		    archive_error_string(t.a) ?: "cannot write");
		archive_write_free(t.a);
		goto out;
	}
	rc = add_tree(&t, "");
	if (archive_write_close(t.a) != ARCHIVE_OK && rc == 0)
		rc = img_err(err, errlen, KB_ESYS, "layer: %s",
		    archive_error_string(t.a) ?: "cannot write");
	archive_write_free(t.a);
	if (rc)
		goto out;
	img_hash_final(&w.h, diff_id);

	/* gzip it: libarchive's raw format is one stream through a filter. */
	struct archive *a = archive_write_new();
	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_set_bytes_per_block(a, 0);
	archive_write_set_options(a, "gzip:!timestamp");
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "layer.tar");
	if (archive_write_open(a, &z, NULL, write_cb, NULL) != ARCHIVE_OK ||
	    archive_write_header(a, e) != ARCHIVE_OK) {
		rc = img_err(err, errlen, KB_ESYS, "layer: %s",
		    archive_error_string(a) ?: "cannot gzip");
	} else if (lseek(w.fd, 0, SEEK_SET) != 0) {
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", tar,
		    strerror(errno));
	} else {
		char buf[1 << 16];
		ssize_t n;
		while ((n = read(w.fd, buf, sizeof(buf))) > 0)
			if (archive_write_data(a, buf, (size_t)n) != n) {
				rc = img_err(err, errlen, KB_ESYS, "layer: %s",
				    archive_error_string(a) ?: "cannot gzip");
				break;
			}
		if (n < 0 && rc == 0)
			rc = img_err(err, errlen, KB_ESYS, "%s: %s", tar,
			    strerror(errno));
	}
	if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
		rc = img_err(err, errlen, KB_ESYS, "layer: %s",
		    archive_error_string(a) ?: "cannot gzip");
	archive_entry_free(e);
	archive_write_free(a);
	if (rc)
		goto out;
	*size = z.h.n;
	img_hash_final(&z.h, digest);
	img_blob_path(st, digest, path, sizeof(path));
	if (rename(gz, path) != 0)
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));
out:
	for (size_t i = 0; i < t.nlinks; i++)
		free(t.links[i].path);
	free(t.links);
	img_hash_free(&w.h);
	img_hash_free(&z.h);
	close(w.fd);
	close(z.fd);
	unlink(tar);
	unlink(gz);
	return rc;
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* RFC 3339, from SOURCE_DATE_EPOCH when set (reproducible builds). */
static void created_now(char out[40])
{
	time_t now = time(NULL);
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde) {
		char *end;
		long long v = strtoll(sde, &end, 10);
		if (*end == '\0' && v >= 0)
			now = (time_t)v;
	}
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *put_json(kb_image_store *st, json_t *doc, const char *mt,
    char digest[80], char *err, size_t errlen)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	if (text == NULL) {
		img_err(err, errlen, KB_ENOMEM, "out of memory");
		return NULL;
	}
	size_t n = strlen(text);
	json_t *desc = NULL;
	if (img_blob_put(st, text, n, digest, err, errlen) == 0)
		desc = json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest",
		    digest, "size", (json_int_t)n);
	free(text);
	return desc;
}

int kb_image_build(kb_image_store *st, const char *ref, const char *rootdir,
    const struct kb_image_config *cfg, char *err, size_t errlen)
{
	char norm[512], diff_id[80], ldigest[80], cdigest[80], mdigest[80];
	char created[40];
	int64_t lsize = 0;
	if (kb_image_normalize(ref, norm, sizeof(norm)) != 0 ||
	    strchr(norm, '@'))
		return img_err(err, errlen, KB_EINVAL,
		    "\"%s\" is not a valid image name[:tag]", ref ? ref : "");
	struct stat sb;
	if (rootdir == NULL || stat(rootdir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return img_err(err, errlen, KB_EINVAL, "%s: not a directory",
		    rootdir ? rootdir : "(null)");
	int fd = img_lock(st, LOCK_EX, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	img_clean_tmp(st);
	json_t *index = NULL, *cdesc = NULL, *mdesc = NULL;
	int rc = make_layer(st, rootdir, diff_id, ldigest, &lsize, err, errlen);
	if (rc)
		goto out;
	created_now(created);
	json_t *rcfg = json_object();
	if (cfg && cfg->env)
		json_object_set_new(rcfg, "Env", strv_json(cfg->env));
	if (cfg && cfg->entrypoint)
		json_object_set_new(rcfg, "Entrypoint",
		    strv_json(cfg->entrypoint));
	if (cfg && cfg->cmd)
		json_object_set_new(rcfg, "Cmd", strv_json(cfg->cmd));
	if (cfg && cfg->working_dir)
		json_object_set_new(rcfg, "WorkingDir",
		    json_string(cfg->working_dir));
	if (cfg && cfg->user)
		json_object_set_new(rcfg, "User", json_string(cfg->user));
	json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:[s]},s:[{s:s,s:s}]}",
	    "created", created, "architecture", img_arch(), "os", "linux",
	    "config", rcfg, "rootfs", "type", "layers", "diff_ids", diff_id,
	    "history", "created", created, "created_by", "kubus image build");
	if (doc)
		cdesc = put_json(st, doc, MT_OCI_CONFIG, cdigest, err, errlen);
	json_decref(doc);
	if (cdesc == NULL) {
		rc = doc ? KB_ESYS :
			   img_err(err, errlen, KB_ENOMEM, "out of memory");
		goto out;
	}
	doc = json_pack("{s:i,s:s,s:O,s:[{s:s,s:s,s:I}]}", "schemaVersion", 2,
	    "mediaType", MT_OCI_MANIFEST, "config", cdesc, "layers",
	    "mediaType", MT_OCI_LAYER_GZ, "digest", ldigest, "size",
	    (json_int_t)lsize);
	if (doc)
		mdesc =
		    put_json(st, doc, MT_OCI_MANIFEST, mdigest, err, errlen);
	json_decref(doc);
	if (mdesc == NULL) {
		rc = doc ? KB_ESYS :
			   img_err(err, errlen, KB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = img_index_load(st, &index, err, errlen)) != 0)
		goto out;
	img_index_put(index, norm, mdesc);
	mdesc = NULL;
	rc = img_index_save(st, index, err, errlen);
	if (rc == 0)
		img_gc(st, index, NULL, 0);
out:
	json_decref(index);
	json_decref(cdesc);
	json_decref(mdesc);
	img_unlock(fd);
	return rc;
}

/* --- export ------------------------------------------------------------ */

static int tar_add(struct archive *a, const char *name, const void *data,
    size_t n, const char *blob, time_t mtime, char *err, size_t errlen)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_mtime(e, mtime, 0);
	int rc = 0, fd = -1;
	if (data == NULL && blob == NULL) {
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_perm(e, 0755);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		if (blob) {
			struct stat sb;
			fd = open(blob, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &sb) != 0) {
				rc = img_err(err, errlen, KB_ESYS, "%s: %s",
				    blob, strerror(errno));
				goto out;
			}
			n = (size_t)sb.st_size;
		}
		archive_entry_set_size(e, (la_int64_t)n);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", name,
		    archive_error_string(a) ?: "cannot write");
		goto out;
	}
	if (data && archive_write_data(a, data, n) != (la_ssize_t)n)
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", name,
		    archive_error_string(a) ?: "cannot write");
	if (fd >= 0) {
		char buf[1 << 16];
		ssize_t r;
		while (rc == 0 && (r = read(fd, buf, sizeof(buf))) > 0)
			if (archive_write_data(a, buf, (size_t)r) != r)
				rc = img_err(err, errlen, KB_ESYS, "%s: %s",
				    name,
				    archive_error_string(a) ?: "cannot write");
	}
out:
	if (fd >= 0)
		close(fd);
	archive_entry_free(e);
	return rc;
}

static int add_blob(kb_image_store *st, struct archive *a, const char *dg,
    time_t mtime, char *err, size_t errlen)
{
	char path[4200], name[100];
	if (!img_digest_valid(dg))
		return img_err(err, errlen, KB_EINVAL, "bad digest \"%s\"",
		    dg ? dg : "");
	img_blob_path(st, dg, path, sizeof(path));
	snprintf(name, sizeof(name), "blobs/sha256/%s", dg + 7);
	return tar_add(a, name, NULL, 0, path, mtime, err, errlen);
}

int kb_image_export(kb_image_store *st, const char *ref, const char *path,
    char *err, size_t errlen)
{
	char norm[512], tmp[4200];
	if (kb_image_normalize(ref, norm, sizeof(norm)) != 0)
		return img_err(err, errlen, KB_EINVAL,
		    "\"%s\" is not a valid image reference", ref ? ref : "");
	int fd = img_lock(st, LOCK_SH, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	json_t *index = NULL, *man = NULL, *out = NULL;
	struct archive *a = NULL;
	int rc = img_index_load(st, &index, err, errlen);
	if (rc)
		goto out;
	json_t *d = img_index_find(index, norm);
	if (d == NULL) {
		rc = img_err(err, errlen, KB_ENOTFOUND, "%s: no such image",
		    norm);
		goto out;
	}
	const char *mdg = json_string_value(json_object_get(d, "digest"));
	if ((rc = img_blob_json(st, mdg, &man, err, errlen)) != 0)
		goto out;
	const char *name = img_desc_ref(d);
	out = json_pack("{s:i,s:[{s:O,s:O,s:O,s:{s:s,s:s}}]}", "schemaVersion",
	    2, "manifests", "mediaType", json_object_get(d, "mediaType"),
	    "digest", json_object_get(d, "digest"), "size",
	    json_object_get(d, "size"), "annotations", IMG_REF_ANNOTATION, name,
	    IMG_CONTAINERD_NAME, name);
	char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (text == NULL) {
		rc = img_err(err, errlen, KB_EINVAL, "%s: bad index entry",
		    norm);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, tmp) != ARCHIVE_OK) {
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", tmp,
		    archive_error_string(a) ?: "cannot write");
		free(text);
		goto out;
	}
	time_t now = time(NULL);
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	rc = tar_add(a, "oci-layout", layout, sizeof(layout) - 1, NULL, now,
	    err, errlen);
	if (rc == 0)
		rc = tar_add(a, "index.json", text, strlen(text), NULL, now,
		    err, errlen);
	free(text);
	if (rc == 0)
		rc = tar_add(a, "blobs", NULL, 0, NULL, now, err, errlen);
	if (rc == 0)
		rc =
		    tar_add(a, "blobs/sha256", NULL, 0, NULL, now, err, errlen);
	if (rc == 0)
		rc = add_blob(st, a, mdg, now, err, errlen);
	if (rc == 0)
		rc = add_blob(st, a,
		    json_string_value(
			json_object_get(json_object_get(man, "config"),
			    "digest")),
		    now, err, errlen);
	json_t *l;
	size_t i;
	json_array_foreach(json_object_get(man, "layers"), i, l)
		if (rc == 0)
			rc = add_blob(st, a,
			    json_string_value(json_object_get(l, "digest")),
			    now, err, errlen);
	if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", tmp,
		    archive_error_string(a) ?: "cannot write");
	if (rc == 0 && rename(tmp, path) != 0)
		rc = img_err(err, errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));
	if (rc)
		unlink(tmp);
out:
	if (a)
		archive_write_free(a);
	json_decref(out);
	json_decref(man);
	json_decref(index);
	img_unlock(fd);
	return rc;
}
