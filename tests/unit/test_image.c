/* tests/unit/test_image.c — the local OCI image store (image/): reference
 * normalisation; import of layouts and oci-archives (plain and gzip'd,
 * manifest lists); layers unpacked in order with whiteouts and opaque
 * dirs; digests checked; paths escaping the rootfs refused; rm collecting
 * unshared blobs; build and export; `kubus image …` end to end; umoci
 * reading a layout the store wrote. Images are made here with libarchive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include <kubus/err.h>

#include "harness.h"
#include "image.h"
#include "img_internal.h"

struct fx {
	char *dir;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = kbt_mkdtemp("image");
	assert_non_null(f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	/* img_rmrf: it also empties the read-only dirs images have */
	img_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static char *path_of(const struct fx *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *path_of(const struct fx *f, const char *fmt, ...)
{
	static char bufs[8][4096];
	static int k;
	char rel[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	char *b = bufs[k++ % 8];
	snprintf(b, 4096, "%s/%s", f->dir, rel);
	return b;
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static char *slurp(const char *path)
{
	return kbt_slurp(path);
}

/* --- making images ------------------------------------------------------- */

/* A tar entry: type 'f' file (data), 'd' dir, 'l' symlink (data = target),
 * 'h' hard link (data = target path). */
struct ent {
	char type;
	const char *path;
	const char *data;
	int mode;
};

/* A tar (gzip'd when gz) of ents at path. */
static void make_tar(const char *path, const struct ent *e, size_t n, bool gz)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gz)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_mtime(ae, 1700000000, 0);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		int mode = e[i].mode ? e[i].mode :
				       (e[i].type == 'd' ? 0755 : 0644);
		switch (e[i].type) {
		case 'f':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae,
			    (la_int64_t)strlen(e[i].data));
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			mode = 0777;
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			archive_entry_set_size(ae, 0);
			break;
		}
		archive_entry_set_perm(ae, (mode_t)mode);
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == 'f')
			assert_int_equal(archive_write_data(a, e[i].data,
					     strlen(e[i].data)),
			    (la_ssize_t)strlen(e[i].data));
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* Put bytes into layout/blobs/sha256; the descriptor (new reference). */
static json_t *put_blob(const char *layout, const char *mt, const void *data,
    size_t n)
{
	char dg[80], path[4200];
	img_sha256(data, n, dg);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, dg + 7);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	return json_pack("{s:s,s:s,s:I}", "mediaType", mt, "digest", dg, "size",
	    (json_int_t)n);
}

static json_t *put_json_blob(const char *layout, const char *mt, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	assert_non_null(text);
	json_t *d = put_blob(layout, mt, text, strlen(text));
	free(text);
	json_decref(doc);
	return d;
}

static json_t *put_file_blob(const char *layout, const char *mt,
    const char *file)
{
	char *data;
	size_t n;
	assert_int_equal(img_read_file(file, 64u << 20, &data, &n, NULL, 0), 0);
	json_t *d = put_blob(layout, mt, data, n);
	free(data);
	return d;
}

static void layout_init(const char *layout)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/blobs/sha256", layout);
	assert_int_equal(img_mkdirs(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/oci-layout", layout);
	write_text(path, "{\"imageLayoutVersion\":\"1.0.0\"}");
}

/* A manifest of the given layer descriptors (taken) with a config whose
 * Cmd is cmd; its descriptor (new reference), named ref when not NULL. */
static json_t *put_image(const char *layout, json_t *layers, const char *cmd,
    const char *ref)
{
	json_t *diff = json_array(), *l;
	size_t i;
	json_array_foreach(layers, i, l)
		json_array_append(diff, json_object_get(l, "digest"));
	json_t *cfg = put_json_blob(layout, MT_OCI_CONFIG,
	    json_pack("{s:s,s:s,s:s,s:{s:[s],s:[s],s:s},s:{s:s,s:o}}",
		"created", "2024-01-02T03:04:05Z", "architecture", img_arch(),
		"os", "linux", "config", "Cmd", cmd, "Env", "PATH=/bin",
		"WorkingDir", "/w", "rootfs", "type", "layers", "diff_ids",
		diff));
	json_t *man = put_json_blob(layout, MT_OCI_MANIFEST,
	    json_pack("{s:i,s:s,s:o,s:o}", "schemaVersion", 2, "mediaType",
		MT_OCI_MANIFEST, "config", cfg, "layers", layers));
	if (ref)
		json_object_set_new(man, "annotations",
		    json_pack("{s:s}", IMG_REF_ANNOTATION, ref));
	return man;
}

/* index.json of the layout listing the descriptors (taken). */
static void write_index(const char *layout, json_t *descs)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/index.json", layout);
	json_t *idx =
	    json_pack("{s:i,s:o}", "schemaVersion", 2, "manifests", descs);
	assert_int_equal(json_dump_file(idx, path, JSON_COMPACT), 0);
	json_decref(idx);
}

/* Tar up a layout directory (the oci-archive format). */
static void tar_dir(const char *dir, const char *out, bool gz)
{
	char cmd[9000], *o;
	snprintf(cmd, sizeof(cmd), "tar -C '%s' -c%sf '%s' .", dir,
	    gz ? "z" : "", out);
	int rc = kbt_run(cmd, &o);
	if (rc != 0)
		fail_msg("%s: %s", cmd, o);
	free(o);
}

/* The two-layer image of the whiteout test, in layout dir L as
 * example.com/multi:v1. Layer 1 gzip'd, layer 2 plain tar. */
static void make_multilayer(const struct fx *f, const char *L)
{
	layout_init(L);
	static const struct ent l1[] = {
		{ 'd', "a", NULL, 0 },
		{ 'f', "a/keep", "old keep", 0 },
		{ 'f', "a/gone", "gone", 0 },
		{ 'd', "a/gonedir", NULL, 0 },
		{ 'f', "a/gonedir/x", "x", 0 },
		{ 'd', "d", NULL, 0 },
		{ 'f', "d/old1", "old1", 0 },
		{ 'd', "d/sub", NULL, 0 },
		{ 'f', "d/sub/old2", "old2", 0 },
		{ 'd', "e", NULL, 0 },
		{ 'f', "e/x", "ex", 0755 },
		{ 'f', "./bin/tool", "#!/bin/sh\n", 04755 },
		{ 'l', "bin/link", "tool", 0 },
		{ 'd', "tmp", NULL, 01777 },
		{ 'd', "ro", NULL, 0555 },
		{ 'f', "ro/file", "ro", 0444 },
	};
	static const struct ent l2[] = {
		{ 'f', "a/.wh.gone", "", 0 },
		{ 'f', "a/.wh.gonedir", "", 0 },
		{ 'f', "a/keep", "new keep", 0600 },
		{ 'd', "d", NULL, 0750 },
		{ 'f', "d/.wh..wh..opq", "", 0 },
		{ 'f', "d/new", "new", 0 },
		{ 'h', "e/hard", "e/x", 0 },
		{ 'f', "f/deep/file", "deep", 0 }, /* parents not in the tar */
		{ 'f', ".wh.nothing-here", "", 0 },
	};
	char t1[4200], t2[4200];
	snprintf(t1, sizeof(t1), "%s/l1.tgz", f->dir);
	snprintf(t2, sizeof(t2), "%s/l2.tar", f->dir);
	make_tar(t1, l1, sizeof(l1) / sizeof(l1[0]), true);
	make_tar(t2, l2, sizeof(l2) / sizeof(l2[0]), false);
	json_t *layers = json_pack("[o,o]",
	    put_file_blob(L, MT_OCI_LAYER_GZ, t1),
	    put_file_blob(L, "application/vnd.oci.image.layer.v1.tar", t2));
	write_index(L,
	    json_pack("[o]",
		put_image(L, layers, "sh", "example.com/multi:v1")));
}

static kb_image_store *open_store(const struct fx *f, const char *name)
{
	kb_image_store *st;
	char err[512];
	int rc = kb_image_open(path_of(f, "%s", name), &st, err, sizeof(err));
	if (rc)
		fail_msg("open: %s", err);
	return st;
}

static void import_ok(kb_image_store *st, const char *path, const char *as)
{
	char err[1024];
	int rc = kb_image_import(st, path, as, err, sizeof(err));
	if (rc)
		fail_msg("import %s: %s", path, err);
}

static size_t count_entries(const char *dir)
{
	char cmd[4200], *o;
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	assert_int_equal(kbt_run(cmd, &o), 0);
	size_t n = strtoul(o, NULL, 10);
	free(o);
	return n;
}

/* --- normalisation ------------------------------------------------------- */

static void test_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "busybox", "docker.io/library/busybox:latest" },
		{ "busybox:latest", "docker.io/library/busybox:latest" },
		{ "library/busybox", "docker.io/library/busybox:latest" },
		{ "docker.io/library/busybox:latest",
		    "docker.io/library/busybox:latest" },
		{ "docker.io/busybox", "docker.io/library/busybox:latest" },
		{ "index.docker.io/library/busybox:1.36",
		    "docker.io/library/busybox:1.36" },
		{ "busybox:1.36.1-musl",
		    "docker.io/library/busybox:1.36.1-musl" },
		{ "reg:5000/a/b:t", "reg:5000/a/b:t" },
		{ "reg:5000/a/b", "reg:5000/a/b:latest" },
		{ "localhost/x", "localhost/x:latest" },
		{ "Quay.IO/org/app:v_1", "Quay.IO/org/app:v_1" },
		{ "user/app", "docker.io/user/app:latest" },
		{ "user/a.b-c__d", "docker.io/user/a.b-c__d:latest" },
		{ "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		    "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
		{ "ghcr.io/o/n:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		    "ghcr.io/o/n@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
	};
	static const char *const bad[] = {
		"",
		"BusyBox",
		"busybox:",
		":latest",
		"busybox::1",
		"a//b",
		"/busybox",
		"busybox/",
		"bus box",
		"busybox:la@test",
		"busybox@sha256:0123",
		"busybox@md5:0123456789abcdef0123456789abcdef",
		"busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"-busybox",
		"busybox-",
		"reg:port/a",
		"reg:5000000/a",
		"a..b",
		"busybox:-tag",
		"x@",
		"@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	char out[512];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int rc = kb_image_normalize(ok[i].in, out, sizeof(out));
		if (rc != 0)
			fail_msg("normalize(%s): %d", ok[i].in, rc);
		if (strcmp(out, ok[i].out))
			fail_msg("normalize(%s) = %s, want %s", ok[i].in, out,
			    ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kb_image_normalize(bad[i], out, sizeof(out)) != KB_EINVAL)
			fail_msg("normalize(\"%s\") accepted as %s", bad[i],
			    out);
	assert_int_equal(kb_image_normalize(NULL, out, sizeof(out)), KB_EINVAL);
	/* too small an output buffer is an error, not a truncation */
	assert_int_equal(kb_image_normalize("busybox", out, 10), KB_EINVAL);
	char big[400];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kb_image_normalize(big, out, sizeof(out)), KB_EINVAL);
}

/* --- layers, whiteouts ----------------------------------------------------- */

static void test_layout_multilayer_rootfs(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	make_multilayer(f, L);
	kb_image_store *st = open_store(f, "store");
	import_ok(st, L, NULL);

	int present = -1;
	assert_int_equal(kb_image_present(st, "example.com/multi:v1", &present),
	    0);
	assert_int_equal(present, 1);
	assert_int_equal(kb_image_present(st, "example.com/multi:v2", &present),
	    0);
	assert_int_equal(present, 0);
	assert_int_equal(kb_image_present(st, "Bad Ref", &present), KB_EINVAL);

	struct kb_image_config cfg;
	char root[4096], err[1024];
	int rc = kb_image_rootfs(st, "example.com/multi:v1", &cfg, root,
	    sizeof(root), err, sizeof(err));
	if (rc)
		fail_msg("rootfs: %s", err);
	assert_non_null(cfg.cmd);
	assert_string_equal(cfg.cmd[0], "sh");
	assert_null(cfg.cmd[1]);
	assert_null(cfg.entrypoint);
	assert_string_equal(cfg.env[0], "PATH=/bin");
	assert_string_equal(cfg.working_dir, "/w");
	assert_null(cfg.user);
	assert_true(img_digest_valid(cfg.digest));
	char want[4200];
	snprintf(want, sizeof(want), "%s/rootfs/%s", path_of(f, "store"),
	    cfg.digest + 7);
	assert_string_equal(root, want);

	char p[4200], *s;
	struct stat sb;
#define AT(rel) (snprintf(p, sizeof(p), "%s/%s", root, rel), p)
	/* layer 2 overwrote a/keep, with its mode */
	assert_non_null(s = slurp(AT("a/keep")));
	assert_string_equal(s, "new keep");
	free(s);
	assert_int_equal(stat(AT("a/keep"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* whiteouts: a file and a directory */
	assert_int_equal(lstat(AT("a/gone"), &sb), -1);
	assert_int_equal(lstat(AT("a/gonedir"), &sb), -1);
	assert_int_equal(lstat(AT("a/.wh.gone"), &sb), -1);
	/* the opaque dir: only layer 2's entries, its mode */
	assert_int_equal(lstat(AT("d/old1"), &sb), -1);
	assert_int_equal(lstat(AT("d/sub"), &sb), -1);
	assert_int_equal(lstat(AT("d/.wh..wh..opq"), &sb), -1);
	assert_non_null(s = slurp(AT("d/new")));
	assert_string_equal(s, "new");
	free(s);
	assert_int_equal(stat(AT("d"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0750);
	assert_int_equal(count_entries(AT("d")), 1);
	/* untouched layer 1 content, modes, set-uid, sticky, symlink */
	assert_non_null(s = slurp(AT("e/x")));
	assert_string_equal(s, "ex");
	free(s);
	assert_int_equal(stat(AT("bin/tool"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 04755);
	assert_int_equal(sb.st_mtime, 1700000000);
	assert_int_equal(stat(AT("tmp"), &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 01777);
	assert_int_equal(stat(AT("ro"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0555);
	char target[64] = { 0 };
	assert_int_equal(readlink(AT("bin/link"), target, sizeof(target) - 1),
	    4);
	assert_string_equal(target, "tool");
	/* a hard link across layers */
	struct stat a, b;
	assert_int_equal(stat(AT("e/x"), &a), 0);
	assert_int_equal(stat(AT("e/hard"), &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	/* parents made for a path the tar did not list */
	assert_non_null(s = slurp(AT("f/deep/file")));
	assert_string_equal(s, "deep");
	free(s);
	if (geteuid() == 0) {
		assert_int_equal(stat(AT("a/keep"), &sb), 0);
		assert_int_equal(sb.st_uid, 0);
	}
#undef AT
	kb_image_config_free(&cfg);

	/* Second call: the same dir, not unpacked again (a marker stays). */
	snprintf(p, sizeof(p), "%s/marker", root);
	write_text(p, "m");
	char root2[4096];
	assert_int_equal(kb_image_rootfs(st, "example.com/multi:v1", NULL,
			     root2, sizeof(root2), err, sizeof(err)),
	    0);
	assert_string_equal(root, root2);
	assert_int_equal(stat(p, &sb), 0);
	/* No temporary unpack dirs are left. */
	assert_int_equal(count_entries(path_of(f, "store/rootfs")), 1);

	/* An unknown ref: NOTFOUND with a reason. */
	err[0] = '\0';
	assert_int_equal(kb_image_rootfs(st, "example.com/none:v1", NULL, root2,
			     sizeof(root2), err, sizeof(err)),
	    KB_ENOTFOUND);
	assert_non_null(strstr(err, "no such image"));
	kb_image_close(st);
	free(L);
}

/* Several threads ask for the same rootfs at once: one unpack, one path. */
struct racer {
	kb_image_store *st;
	char root[4096];
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char err[512];
	r->rc = kb_image_rootfs(r->st, "example.com/multi:v1", NULL, r->root,
	    sizeof(r->root), err, sizeof(err));
	return NULL;
}

static void test_rootfs_threads(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	make_multilayer(f, L);
	kb_image_store *st = open_store(f, "store");
	import_ok(st, L, NULL);
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i].st = st;
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].root, r[0].root);
	}
	assert_int_equal(count_entries(path_of(f, "store/rootfs")), 1);
	kb_image_close(st);
	free(L);
}

/* --- archives, manifest lists, --as ------------------------------------------ */

static void test_archive_import(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	make_multilayer(f, L);
	char *tgz = strdup(path_of(f, "img.tar.gz"));
	char *tar = strdup(path_of(f, "img.tar"));
	tar_dir(L, tgz, true);
	tar_dir(L, tar, false);

	kb_image_store *st = open_store(f, "store");
	struct kb_image_info *v = NULL;
	size_t n = 0;
	char err[1024];
	int rc = kb_image_import_refs(st, tgz, NULL, &v, &n, err, sizeof(err));
	if (rc)
		fail_msg("import %s: %s", tgz, err);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].ref, "example.com/multi:v1");
	assert_true(img_digest_valid(v[0].digest));
	char digest[80];
	strcpy(digest, v[0].digest);
	free(v);
	/* The same again, plain tar, renamed: two refs, one manifest. */
	import_ok(st, tar, "other/name:t");
	assert_int_equal(kb_image_list(st, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].ref, "docker.io/other/name:t");
	assert_string_equal(v[1].ref, "example.com/multi:v1");
	assert_string_equal(v[0].digest, digest);
	assert_string_equal(v[1].digest, digest);
	assert_string_equal(v[1].created, "2024-01-02T03:04:05Z");
	struct stat sb;
	int64_t sum = 0;
	char *blobs[] = { "l1.tgz", "l2.tar" };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(stat(path_of(f, "%s", blobs[i]), &sb), 0);
		sum += sb.st_size;
	}
	assert_true(v[0].size > sum); /* layers + config + manifest */
	free(v);
	/* name@digest finds it; a digest of another repository does not */
	char ref[300];
	int present = 0;
	snprintf(ref, sizeof(ref), "example.com/multi@%s", digest);
	assert_int_equal(kb_image_present(st, ref, &present), 0);
	assert_int_equal(present, 1);
	snprintf(ref, sizeof(ref), "example.com/else@%s", digest);
	assert_int_equal(kb_image_present(st, ref, &present), 0);
	assert_int_equal(present, 0);
	char root[4096];
	snprintf(ref, sizeof(ref), "other/name@%s", digest);
	assert_int_equal(kb_image_rootfs(st, ref, NULL, root, sizeof(root), err,
			     sizeof(err)),
	    0);

	/* Not an archive; an archive with no layout. */
	char *junk = path_of(f, "junk.tar");
	write_text(junk, "this is not a tar file at all, sorry");
	assert_int_equal(kb_image_import(st, junk, NULL, err, sizeof(err)),
	    KB_EINVAL);
	char *emptydir = path_of(f, "emptydir");
	assert_int_equal(mkdir(emptydir, 0755), 0);
	write_text(path_of(f, "emptydir/hello"), "hi");
	tar_dir(path_of(f, "emptydir"), path_of(f, "nolayout.tar"), false);
	assert_int_equal(kb_image_import(st, path_of(f, "nolayout.tar"), NULL,
			     err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "not an oci-archive"));
	assert_int_equal(kb_image_import(st, emptydir, NULL, err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "not an OCI image layout"));
	assert_int_equal(kb_image_import(st, path_of(f, "missing"), NULL, err,
			     sizeof(err)),
	    KB_ENOTFOUND);
	/* --as with a bad name */
	assert_int_equal(kb_image_import(st, tar, "Bad Name", err, sizeof(err)),
	    KB_EINVAL);
	kb_image_close(st);
	free(L);
	free(tgz);
	free(tar);
}

static void test_manifest_list(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	layout_init(L);
	static const struct ent mine[] = { { 'f', "arch", "mine", 0 } };
	static const struct ent other[] = { { 'f', "arch", "other", 0 } };
	char t1[4200], t2[4200];
	snprintf(t1, sizeof(t1), "%s/mine.tgz", f->dir);
	snprintf(t2, sizeof(t2), "%s/other.tgz", f->dir);
	make_tar(t1, mine, 1, true);
	make_tar(t2, other, 1, true);
	json_t *m1 = put_image(L,
	    json_pack("[o]", put_file_blob(L, MT_OCI_LAYER_GZ, t1)), "mine",
	    NULL);
	json_t *m2 = put_image(L,
	    json_pack("[o]", put_file_blob(L, MT_OCI_LAYER_GZ, t2)), "other",
	    NULL);
	const char *otherarch = strcmp(img_arch(), "arm64") ? "arm64" : "amd64";
	json_object_set_new(m1, "platform",
	    json_pack("{s:s,s:s}", "architecture", img_arch(), "os", "linux"));
	json_object_set_new(m2, "platform",
	    json_pack("{s:s,s:s}", "architecture", otherarch, "os", "linux"));
	json_t *idx = put_json_blob(L, MT_OCI_INDEX,
	    json_pack("{s:i,s:s,s:[O,O]}", "schemaVersion", 2, "mediaType",
		MT_OCI_INDEX, "manifests", m2, m1));
	json_object_set_new(idx, "annotations",
	    json_pack("{s:s,s:s}", IMG_REF_ANNOTATION, "ignored:tag",
		IMG_CONTAINERD_NAME, "docker.io/library/multiarch:1"));
	write_index(L, json_pack("[o]", idx));

	kb_image_store *st = open_store(f, "store");
	import_ok(st, L, NULL);
	struct kb_image_config cfg;
	char root[4096], err[512], p[4200];
	assert_int_equal(kb_image_rootfs(st, "multiarch:1", &cfg, root,
			     sizeof(root), err, sizeof(err)),
	    0);
	assert_string_equal(cfg.cmd[0], "mine");
	kb_image_config_free(&cfg);
	snprintf(p, sizeof(p), "%s/arch", root);
	char *s = slurp(p);
	assert_non_null(s);
	assert_string_equal(s, "mine");
	free(s);
	/* Only this platform's blobs were kept. */
	struct kb_image_info *v;
	size_t n;
	assert_int_equal(kb_image_list(st, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	free(v);
	assert_int_equal(count_entries(path_of(f, "store/blobs/sha256")), 3);

	/* A list with no manifest for this machine is refused. */
	json_object_set_new(m1, "platform",
	    json_pack("{s:s,s:s}", "architecture", "s390x-nope", "os",
		"linux"));
	write_index(L,
	    json_pack("[o]",
		put_json_blob(L, MT_OCI_INDEX,
		    json_pack("{s:i,s:[O,O]}", "schemaVersion", 2, "manifests",
			m2, m1))));
	assert_int_equal(kb_image_import(st, L, "x:1", err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "no linux/"));
	/* An image without a name needs --as. */
	write_index(L, json_pack("[O]", m1));
	json_object_del(m1, "platform");
	write_index(L, json_pack("[O]", m1));
	assert_int_equal(kb_image_import(st, L, NULL, err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "--as"));
	import_ok(st, L, "named:now");
	/* --as needs exactly one image */
	write_index(L, json_pack("[O,O]", m1, m2));
	assert_int_equal(kb_image_import(st, L, "two:images", err, sizeof(err)),
	    KB_EINVAL);
	json_decref(m1);
	json_decref(m2);
	kb_image_close(st);
	free(L);
}

/* --- digests, escapes --------------------------------------------------------- */

static void test_digest_mismatch(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	make_multilayer(f, L);
	char *tar = strdup(path_of(f, "good.tar"));
	tar_dir(L, tar, false);
	/* Flip one byte of the plain layer, keeping its name. */
	json_t *idx = json_load_file(path_of(f, "layout/index.json"), 0, NULL);
	assert_non_null(idx);
	char mdg[80];
	strcpy(mdg,
	    json_string_value(
		json_object_get(json_array_get(json_object_get(idx, "manifests"),
				    0),
		    "digest")));
	json_decref(idx);
	json_t *man =
	    json_load_file(path_of(f, "layout/blobs/sha256/%s", mdg + 7), 0,
		NULL);
	assert_non_null(man);
	char l2[80];
	snprintf(l2, sizeof(l2), "%s",
	    json_string_value(
		json_object_get(json_array_get(json_object_get(man, "layers"),
				    1),
		    "digest")));
	char *blob = strdup(path_of(f, "layout/blobs/sha256/%s", l2 + 7));
	json_decref(man);
	int fd = open(blob, O_RDWR);
	assert_true(fd >= 0);
	char c;
	assert_int_equal(pread(fd, &c, 1, 0), 1);
	c ^= 1;
	assert_int_equal(pwrite(fd, &c, 1, 0), 1);
	close(fd);

	kb_image_store *st = open_store(f, "store");
	char err[1024];
	assert_int_equal(kb_image_import(st, L, NULL, err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "digest mismatch"));
	char *bad = strdup(path_of(f, "bad.tar"));
	tar_dir(L, bad, true);
	assert_int_equal(kb_image_import(st, bad, NULL, err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "digest mismatch"));
	/* Nothing was added, nothing left behind. */
	struct kb_image_info *v;
	size_t n;
	assert_int_equal(kb_image_list(st, &v, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(count_entries(path_of(f, "store/blobs/sha256")), 0);
	assert_int_equal(count_entries(path_of(f, "store/tmp")), 0);

	/* A blob corrupted inside the store is caught when unpacking. */
	import_ok(st, tar, NULL);
	char *stored = path_of(f, "store/blobs/sha256/%s", l2 + 7);
	fd = open(stored, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &c, 1, 0), 1);
	close(fd);
	char root[4096];
	assert_int_equal(kb_image_rootfs(st, "example.com/multi:v1", NULL, root,
			     sizeof(root), err, sizeof(err)),
	    KB_EINVAL);
	assert_non_null(strstr(err, "digest mismatch"));
	assert_int_equal(count_entries(path_of(f, "store/rootfs")), 0);
	kb_image_close(st);
	free(L);
	free(tar);
	free(bad);
	free(blob);
}

/* An image of one layer with the given entries, imported as ref. */
static void one_layer_image(const struct fx *f, kb_image_store *st,
    const char *ref, const struct ent *e, size_t n)
{
	char L[4200], t[4300];
	snprintf(L, sizeof(L), "%s/L-%s", f->dir, ref);
	for (char *p = L + strlen(f->dir) + 1; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	layout_init(L);
	snprintf(t, sizeof(t), "%s/layer.tgz", L);
	make_tar(t, e, n, true);
	write_index(L,
	    json_pack("[o]",
		put_image(L,
		    json_pack("[o]", put_file_blob(L, MT_OCI_LAYER_GZ, t)),
		    "sh", ref)));
	import_ok(st, L, NULL);
}

static void test_escape_refused(void **state)
{
	struct fx *f = *state;
	kb_image_store *st = open_store(f, "store");
	char *outside = strdup(path_of(f, "outside"));
	assert_int_equal(mkdir(outside, 0755), 0);
	static const struct ent dotdot[] = {
		{ 'f', "ok", "fine", 0 },
		{ 'f', "../escape", "gotcha", 0 },
	};
	static const struct ent deep[] = {
		{ 'd', "a", NULL, 0 },
		{ 'f', "a/../../../../escape2", "gotcha", 0 },
	};
	char abs_link[4200];
	snprintf(abs_link, sizeof(abs_link), "%s", outside);
	const struct ent abs_sym[] = {
		{ 'l', "evil", abs_link, 0 },
		{ 'f', "evil/pwned", "gotcha", 0 },
	};
	static const struct ent rel_sym[] = {
		{ 'l', "up", "../../../../../../..", 0 },
		{ 'f', "up/tmp/pwned-rel", "gotcha", 0 },
	};
	const struct ent hard[] = {
		{ 'h', "h", "../../../../../../etc/passwd", 0 },
	};
	static const struct ent sym_hard[] = {
		{ 'l', "evil", "/etc", 0 },
		{ 'h', "h", "evil/passwd", 0 },
	};
	static const struct ent whiteout[] = {
		{ 'l', "evil", "/tmp", 0 },
		{ 'f', "evil/.wh.anything", "", 0 },
	};
	struct {
		const char *ref;
		const struct ent *e;
		size_t n;
		const char *why;
	} cases[] = {
		{ "t/dotdot", dotdot, 2, "escapes the rootfs" },
		{ "t/deep", deep, 2, "escapes the rootfs" },
		{ "t/abs", abs_sym, 2, "crosses a symlink" },
		{ "t/rel", rel_sym, 2, "crosses a symlink" },
		{ "t/hard", hard, 1, "escapes the rootfs" },
		{ "t/symhard", sym_hard, 2, "crosses a symlink" },
		{ "t/wh", whiteout, 2, "crosses a symlink" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		one_layer_image(f, st, cases[i].ref, cases[i].e, cases[i].n);
		char root[4096], err[1024] = "";
		int rc = kb_image_rootfs(st, cases[i].ref, NULL, root,
		    sizeof(root), err, sizeof(err));
		if (rc != KB_EINVAL || !strstr(err, cases[i].why))
			fail_msg("%s: rc %d, err \"%s\", want EINVAL \"%s\"",
			    cases[i].ref, rc, err, cases[i].why);
	}
	struct stat sb;
	assert_int_equal(count_entries(outside), 0);
	assert_int_equal(lstat(path_of(f, "store/escape"), &sb), -1);
	assert_int_equal(lstat(path_of(f, "store/rootfs/escape"), &sb), -1);
	assert_int_equal(lstat(path_of(f, "escape"), &sb), -1);
	assert_int_equal(lstat(path_of(f, "escape2"), &sb), -1);
	assert_int_equal(lstat("/tmp/pwned-rel", &sb), -1);
	assert_int_equal(lstat("/etc/.wh.anything", &sb), -1);
	/* No rootfs (or half-made one) stays for the refused images. */
	assert_int_equal(count_entries(path_of(f, "store/rootfs")), 0);
	kb_image_close(st);
	free(outside);
}

/* --- rm ---------------------------------------------------------------------- */

static void test_rm_gc(void **state)
{
	struct fx *f = *state;
	char *L = strdup(path_of(f, "layout"));
	layout_init(L);
	static const struct ent shared[] = { { 'f', "shared", "s", 0 } };
	static const struct ent own1[] = { { 'f', "one", "1", 0 } };
	static const struct ent own2[] = { { 'f', "two", "2", 0 } };
	char ts[4200], t1[4200], t2[4200];
	snprintf(ts, sizeof(ts), "%s/s.tgz", f->dir);
	snprintf(t1, sizeof(t1), "%s/1.tgz", f->dir);
	snprintf(t2, sizeof(t2), "%s/2.tgz", f->dir);
	make_tar(ts, shared, 1, true);
	make_tar(t1, own1, 1, true);
	make_tar(t2, own2, 1, true);
	json_t *sd = put_file_blob(L, MT_OCI_LAYER_GZ, ts);
	json_t *d1 = put_file_blob(L, MT_OCI_LAYER_GZ, t1);
	json_t *d2 = put_file_blob(L, MT_OCI_LAYER_GZ, t2);
	char sdg[80], d1dg[80];
	strcpy(sdg, json_string_value(json_object_get(sd, "digest")));
	strcpy(d1dg, json_string_value(json_object_get(d1, "digest")));
	json_t *m1 =
	    put_image(L, json_pack("[O,o]", sd, d1), "one", "app/one:1");
	json_t *m2 =
	    put_image(L, json_pack("[o,o]", sd, d2), "two", "app/two:2");
	write_index(L, json_pack("[o,o]", m1, m2));

	kb_image_store *st = open_store(f, "store");
	import_ok(st, L, NULL);
	/* A third name for image one. */
	import_ok(st, L, NULL);
	char *blobs = strdup(path_of(f, "store/blobs/sha256"));
	/* shared + 2 own layers + 2 configs + 2 manifests */
	assert_int_equal(count_entries(blobs), 7);
	char root1[4096], root2[4096], err[512];
	assert_int_equal(kb_image_rootfs(st, "app/one:1", NULL, root1,
			     sizeof(root1), err, sizeof(err)),
	    0);
	assert_int_equal(kb_image_rootfs(st, "app/two:2", NULL, root2,
			     sizeof(root2), err, sizeof(err)),
	    0);

	assert_int_equal(kb_image_remove(st, "app/one:1", err, sizeof(err)), 0);
	/* one's layer, config and manifest are gone; the shared layer stays */
	assert_int_equal(count_entries(blobs), 4);
	struct stat sb;
	assert_int_equal(stat(path_of(f, "store/blobs/sha256/%s", sdg + 7),
			     &sb),
	    0);
	assert_int_equal(stat(path_of(f, "store/blobs/sha256/%s", d1dg + 7),
			     &sb),
	    -1);
	assert_int_equal(stat(root1, &sb), -1);
	assert_int_equal(stat(root2, &sb), 0);
	int present = 1;
	assert_int_equal(kb_image_present(st, "app/one:1", &present), 0);
	assert_int_equal(present, 0);
	/* two still unpacks and works */
	char p[4200];
	snprintf(p, sizeof(p), "%s/shared", root2);
	assert_int_equal(stat(p, &sb), 0);

	assert_int_equal(kb_image_remove(st, "app/one:1", err, sizeof(err)),
	    KB_ENOTFOUND);
	assert_non_null(strstr(err, "no such image"));
	assert_int_equal(kb_image_remove(st, "not valid!", err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(kb_image_remove(st, "docker.io/app/two:2", err,
			     sizeof(err)),
	    0);
	assert_int_equal(count_entries(blobs), 0);
	assert_int_equal(count_entries(path_of(f, "store/rootfs")), 0);
	kb_image_close(st);
	free(L);
	free(blobs);
}

/* --- build, export ----------------------------------------------------------- */

static void make_tree(const struct fx *f, const char *root)
{
	char p[4200];
	assert_int_equal(mkdir(root, 0755), 0);
#define IN(rel) (snprintf(p, sizeof(p), "%s/%s", root, rel), p)
	assert_int_equal(mkdir(IN("bin"), 0755), 0);
	assert_int_equal(mkdir(IN("tmp"), 0755), 0);
	assert_int_equal(chmod(IN("tmp"), 01777), 0);
	assert_int_equal(mkdir(IN("etc"), 0755), 0);
	write_text(IN("bin/tool"), "#!/bin/sh\necho tool\n");
	assert_int_equal(chmod(IN("bin/tool"), 0755), 0);
	assert_int_equal(symlink("tool", IN("bin/alias")), 0);
	char q[4200];
	snprintf(q, sizeof(q), "%s/bin/tool", root);
	assert_int_equal(link(q, IN("bin/hard")), 0);
	write_text(IN("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
#undef IN
}

static void test_build_export(void **state)
{
	struct fx *f = *state;
	char *tree = strdup(path_of(f, "tree"));
	make_tree(f, tree);
	kb_image_store *st = open_store(f, "store");
	char *cmd[] = { "sh", "-c", "echo hi", NULL };
	char *env[] = { "PATH=/bin", "A=b c", NULL };
	char *ep[] = { "/bin/tool", NULL };
	struct kb_image_config in = { .cmd = cmd,
		.env = env,
		.entrypoint = ep,
		.user = "65534",
		.working_dir = "/tmp" };
	char err[1024];
	int rc = kb_image_build(st, "mytool", tree, &in, err, sizeof(err));
	if (rc)
		fail_msg("build: %s", err);
	assert_int_equal(
	    kb_image_build(st,
		"x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		tree, &in, err, sizeof(err)),
	    KB_EINVAL);
	assert_int_equal(kb_image_build(st, "y", path_of(f, "nope"), &in, err,
			     sizeof(err)),
	    KB_EINVAL);

	struct kb_image_config out;
	char root[4096], p[4200];
	assert_int_equal(kb_image_rootfs(st, "docker.io/library/mytool:latest",
			     &out, root, sizeof(root), err, sizeof(err)),
	    0);
	assert_string_equal(out.cmd[2], "echo hi");
	assert_string_equal(out.env[1], "A=b c");
	assert_string_equal(out.entrypoint[0], "/bin/tool");
	assert_string_equal(out.user, "65534");
	assert_string_equal(out.working_dir, "/tmp");
	kb_image_config_free(&out);
	struct stat sb, a;
	snprintf(p, sizeof(p), "%s/tmp", root);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 01777);
	snprintf(p, sizeof(p), "%s/bin/tool", root);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	assert_int_equal(sb.st_uid, geteuid() == 0 ? 0 : geteuid());
	snprintf(p, sizeof(p), "%s/bin/hard", root);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(a.st_ino, sb.st_ino);
	char target[64] = { 0 };
	snprintf(p, sizeof(p), "%s/bin/alias", root);
	assert_int_equal(readlink(p, target, sizeof(target) - 1), 4);
	assert_string_equal(target, "tool");

	/* export → import into another store: same digest */
	char *tar = strdup(path_of(f, "mytool.tar"));
	assert_int_equal(kb_image_export(st, "mytool", tar, err, sizeof(err)),
	    0);
	assert_int_equal(kb_image_export(st, "nope", tar, err, sizeof(err)),
	    KB_ENOTFOUND);
	kb_image_store *st2 = open_store(f, "store2");
	struct kb_image_info *v1, *v2;
	size_t n1, n2;
	assert_int_equal(kb_image_import_refs(st2, tar, NULL, &v2, &n2, err,
			     sizeof(err)),
	    0);
	assert_int_equal(kb_image_list(st, &v1, &n1, err, sizeof(err)), 0);
	assert_int_equal(n1, 1);
	assert_int_equal(n2, 1);
	assert_string_equal(v2[0].ref, "docker.io/library/mytool:latest");
	assert_string_equal(v1[0].digest, v2[0].digest);
	free(v1);
	free(v2);
	kb_image_close(st2);
	kb_image_close(st);
	free(tree);
	free(tar);
}

/* --- the CLI ------------------------------------------------------------------ */

static int kubus(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int kubus(char **out, const char *fmt, ...)
{
	char args[4096], cmd[5120];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "timeout -s KILL 30 '%s/kubus' %s",
	    kbt_build_dir(), args);
	int rc = kbt_run(cmd, out);
	assert_non_null(*out);
	return rc;
}

#define expect_status(want, out, ...)                                          \
	do {                                                                   \
		int rc_ = kubus(&(out), __VA_ARGS__);                          \
		if (rc_ != (want))                                             \
			fail_msg("kubus exit status %d, want %d; output:\n%s", \
			    rc_, (want), (out));                               \
	} while (0)

#define expect_in(hay, needle)                                                 \
	do {                                                                   \
		if (strstr((hay), (needle)) == NULL)                           \
			fail_msg("`%s` not in:\n%s", (needle), (hay));         \
	} while (0)

/* One line, "kubus image: …". */
static void one_line_error(const char *out, const char *needle)
{
	if (strncmp(out, "kubus image: ", 13) != 0 ||
	    strchr(out, '\n') != out + strlen(out) - 1 || !strstr(out, needle))
		fail_msg("want one line \"kubus image: …%s…\", got:\n%s",
		    needle, out);
}

static void test_cli(void **state)
{
	struct fx *f = *state;
	char *tree = strdup(path_of(f, "tree"));
	make_tree(f, tree);
	char *D = strdup(path_of(f, "data"));
	char *tar = strdup(path_of(f, "out/t.tar"));
	assert_int_equal(mkdir(path_of(f, "out"), 0755), 0);
	char *out;

	/* build --out only: the file, no store, no scratch left */
	expect_status(0, out,
	    "image build demo/tool:1 '%s' --cmd '[\"sh\",\"-c\",\"echo a b\"]' "
	    "--entrypoint /bin/tool --env PATH=/bin --env X=1 --out '%s'",
	    tree, tar);
	expect_in(out, "docker.io/demo/tool:1 sha256:");
	free(out);
	assert_int_equal(count_entries(path_of(f, "out")), 1);

	/* import it: one line per ref, with the digest */
	expect_status(0, out, "image import '%s' --data-dir '%s'", tar, D);
	expect_in(out, "docker.io/demo/tool:1 sha256:");
	char digest[80] = "";
	assert_int_equal(sscanf(out, "%*s %79s", digest), 1);
	assert_true(img_digest_valid(digest));
	free(out);
	expect_status(0, out, "image import '%s' --as busybox --data-dir '%s'",
	    tar, D);
	expect_in(out, "docker.io/library/busybox:latest sha256:");
	free(out);

	/* ls: the table */
	expect_status(0, out, "image ls --data-dir '%s'", D);
	expect_in(out, "REF");
	expect_in(out, "DIGEST");
	expect_in(out, "SIZE");
	expect_in(out, "CREATED");
	char shortd[13];
	snprintf(shortd, sizeof(shortd), "%.12s", digest + 7);
	expect_in(out, shortd);
	expect_in(out, "docker.io/demo/tool:1");
	expect_in(out, "docker.io/library/busybox:latest");
	assert_null(strstr(out, digest + 7)); /* short digests only */
	free(out);

	/* the image's config, through the library, on the CLI's store */
	kb_image_store *st = open_store(f, "data/images");
	struct kb_image_config cfg;
	char root[4096], err[512];
	assert_int_equal(kb_image_rootfs(st, "demo/tool:1", &cfg, root,
			     sizeof(root), err, sizeof(err)),
	    0);
	assert_string_equal(cfg.cmd[2], "echo a b");
	assert_string_equal(cfg.entrypoint[0], "/bin/tool");
	assert_string_equal(cfg.env[1], "X=1");
	kb_image_config_free(&cfg);
	kb_image_close(st);

	/* build straight into the store */
	expect_status(0, out,
	    "image build direct '%s' --cmd 'sh -c true' "
	    "--data-dir '%s'",
	    tree, D);
	expect_in(out, "docker.io/library/direct:latest");
	free(out);

	/* rm */
	expect_status(0, out, "image rm busybox direct --data-dir '%s'", D);
	expect_in(out, "removed docker.io/library/busybox:latest");
	free(out);
	expect_status(0, out, "image ls --data-dir '%s'", D);
	assert_null(strstr(out, "busybox"));
	assert_null(strstr(out, "direct"));
	expect_in(out, "docker.io/demo/tool:1");
	free(out);

	/* errors: one line, exit 1 */
	expect_status(1, out, "image rm busybox --data-dir '%s'", D);
	one_line_error(out,
	    "rm busybox: docker.io/library/busybox:latest: no such image");
	free(out);
	expect_status(1, out, "image rm 'Not/Valid' --data-dir '%s'", D);
	one_line_error(out, "not a valid image reference");
	free(out);
	expect_status(1, out, "image import '%s/none.tar' --data-dir '%s'",
	    f->dir, D);
	one_line_error(out, "none.tar");
	free(out);
	expect_status(1, out, "image import '%s' --data-dir '%s'", tree, D);
	one_line_error(out, "not an OCI image layout");
	free(out);
	expect_status(1, out, "image build x '%s/none' --data-dir '%s'", f->dir,
	    D);
	one_line_error(out, "not a directory");
	free(out);
	expect_status(1, out,
	    "image build x '%s' --cmd '[1,2]' --data-dir '%s'", tree, D);
	one_line_error(out, "--cmd");
	free(out);
	expect_status(1, out, "image ls --data-dir /proc/nonexistent/x");
	one_line_error(out, "/proc/nonexistent/x/images");
	free(out);

	/* misuse: usage, exit 2 */
	expect_status(2, out, "image");
	expect_in(out, "usage: kubus image import");
	free(out);
	expect_status(2, out, "image frob");
	expect_in(out, "unknown subcommand `frob`");
	free(out);
	expect_status(2, out, "image import");
	free(out);
	expect_status(2, out, "image ls --bogus");
	free(out);
	expect_status(2, out, "image rm x --as y --data-dir '%s'", D);
	free(out);
	expect_status(0, out, "image --help");
	expect_in(out, "usage: kubus image import");
	free(out);
	expect_status(0, out, "--help");
	expect_in(out, "image import|ls|rm");
	free(out);
	free(tree);
	free(D);
	free(tar);
}

/* umoci reads the store's layout (`umoci ls` lists the ref, `umoci
 * unpack` unpacks it), and the store reads a layout umoci made. */
static void test_umoci_reads_store(void **state)
{
	struct fx *f = *state;
	char *o = NULL;
	if (kbt_run("command -v umoci", &o) != 0) {
		free(o);
		print_message("skipped: umoci is not installed\n");
		skip();
	}
	free(o);
	char *tree = strdup(path_of(f, "tree"));
	make_tree(f, tree);
	kb_image_store *st = open_store(f, "store");
	char *cmd[] = { "sh", NULL };
	struct kb_image_config in = { .cmd = cmd };
	char err[512];
	assert_int_equal(kb_image_build(st, "busybox", tree, &in, err,
			     sizeof(err)),
	    0);
	assert_int_equal(kb_image_build(st, "reg:5000/a/b:t", tree, &in, err,
			     sizeof(err)),
	    0);
	char c[8400];
	snprintf(c, sizeof(c), "umoci ls --layout '%s'", path_of(f, "store"));
	int rc = kbt_run(c, &o);
	if (rc != 0)
		fail_msg("%s: %s", c, o);
	/* umoci prints the ref.name annotations as they are: the full
	 * normalised refs, tag included. */
	expect_in(o, "docker.io/library/busybox:latest\n");
	expect_in(o, "reg:5000/a/b:t\n");
	free(o);
	/* and can unpack it, with our layer's modes */
	const char *rl = geteuid() == 0 ? "" : "--rootless";
	snprintf(c, sizeof(c),
	    "umoci unpack %s --image '%s:docker.io/library/busybox:latest' '%s'",
	    rl, path_of(f, "store"), path_of(f, "bundle"));
	rc = kbt_run(c, &o);
	if (rc != 0)
		fail_msg("%s: %s", c, o);
	free(o);
	struct stat sb;
	assert_int_equal(stat(path_of(f, "bundle/rootfs/tmp"), &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 01777);
	assert_int_equal(stat(path_of(f, "bundle/rootfs/bin/tool"), &sb), 0);

	/* The other way: a layout umoci wrote (two layers, the second
	 * whiting out a file) imports and unpacks. umoci names it by the
	 * bare tag, so --as names it here. */
	char *U = strdup(path_of(f, "umoci"));
	char *B = strdup(path_of(f, "ub"));
	snprintf(c, sizeof(c),
	    "set -e; umoci init --layout '%1$s'; umoci new --image '%1$s:v1';"
	    "umoci unpack %3$s --image '%1$s:v1' '%2$s'; echo hi > '%2$s/rootfs/hello';"
	    "mkdir '%2$s/rootfs/d'; echo x > '%2$s/rootfs/d/x';"
	    "umoci repack --image '%1$s:v1' '%2$s'; rm -rf '%2$s';"
	    "umoci unpack %3$s --image '%1$s:v1' '%2$s'; rm '%2$s/rootfs/d/x';"
	    "umoci repack --image '%1$s:v1' '%2$s'",
	    U, B, rl);
	rc = kbt_run(c, &o);
	if (rc != 0)
		fail_msg("%s: %s", c, o);
	free(o);
	import_ok(st, U, "umoci/made:1");
	char root[4096], p[4200];
	assert_int_equal(kb_image_rootfs(st, "umoci/made:1", NULL, root,
			     sizeof(root), err, sizeof(err)),
	    0);
	snprintf(p, sizeof(p), "%s/hello", root);
	char *s = slurp(p);
	assert_non_null(s);
	assert_string_equal(s, "hi\n");
	free(s);
	snprintf(p, sizeof(p), "%s/d", root);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(count_entries(p), 0);
	kb_image_close(st);
	free(tree);
	free(U);
	free(B);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test_setup_teardown(test_layout_multilayer_rootfs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rootfs_threads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_archive_import, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_list, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_digest_mismatch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_escape_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rm_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_export, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
		cmocka_unit_test_setup_teardown(test_umoci_reads_store, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
