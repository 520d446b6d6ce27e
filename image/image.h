/* image/image.h — the local OCI image store (static library kubus-image).
 *
 * Used by `kubus image import|ls|rm` (core/main.c) and by runtime-runc.
 * The store is an OCI image layout (https://github.com/opencontainers/
 * image-spec/blob/main/image-layout.md) that umoci and skopeo read and
 * write: DIR/oci-layout, DIR/index.json, DIR/blobs/sha256/<hex>. Each
 * manifest in index.json carries its reference in the annotation
 * `org.opencontainers.image.ref.name`, stored normalised
 * ("docker.io/library/busybox:latest"). Unpacked root filesystems are kept
 * beside it, one per manifest digest, read-only by convention:
 * DIR/rootfs/<manifest-hex>/ (made on first kb_image_rootfs, atomically:
 * unpacked into a temporary dir, then renamed), so containers share them
 * as the lower layer of an overlay mount.
 *
 * The default DIR is DATA_DIR/images.
 *
 * References are normalised as Docker does: "busybox" and "busybox:latest"
 * and "library/busybox" all mean "docker.io/library/busybox:latest";
 * "reg:5000/x/y:t" keeps its registry; "name@sha256:<hex>" names a manifest
 * by digest.
 *
 * Thread-safe: one store may be used from several threads; imports,
 * removals and unpacking lock DIR/.lock (flock) so that several processes
 * (the CLI while a cluster runs) can share the directory.
 *
 * Errors: 0 or a kb_err (KB_ENOTFOUND for an unknown reference, KB_EINVAL
 * for a malformed image or layout, KB_ESYS for I/O), with a one-line
 * reason in err[errlen] when err is not NULL.
 */
#ifndef KUBUS_IMAGE_H
#define KUBUS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kb_image_store kb_image_store;

/* Open (creating when missing) the store in dir. */
int kb_image_open(const char *dir, kb_image_store **out, char *err,
    size_t errlen);
void kb_image_close(kb_image_store *st);

/* Normalise a reference into out[outlen]; KB_EINVAL when malformed. */
int kb_image_normalize(const char *ref, char *out, size_t outlen);

/* Import every image of `path`: an OCI layout directory, or a tar file of
 * one (an "oci-archive", possibly gzip'd). `as` (may be NULL) renames the
 * image when the source holds exactly one. Manifest lists/indexes are
 * resolved to the linux/amd64 (this machine's) manifest. Blobs are
 * verified against their digests. Refs print to stdout only in the CLI. */
int kb_image_import(kb_image_store *st, const char *path, const char *as,
    char *err, size_t errlen);

struct kb_image_info {
	char ref[256];    /* normalised */
	char digest[80];  /* "sha256:<hex>" of the manifest */
	int64_t size;     /* manifest + config + layers, bytes (list); the
	                      * manifest's own size (import_refs) */
	char created[40]; /* the config's "created", "" if none */
};
/* kb_image_import that also tells what it imported: *out (malloc'd,
 * free()) gets ref and digest of each image, *n entries; out may be NULL.
 * All or nothing: on error the store's index is unchanged. */
int kb_image_import_refs(kb_image_store *st, const char *path, const char *as,
    struct kb_image_info **out, size_t *n, char *err, size_t errlen);

/* Every image, sorted by ref: *out malloc'd (free()), *n entries. */
int kb_image_list(kb_image_store *st, struct kb_image_info **out, size_t *n,
    char *err, size_t errlen);
/* Remove a reference; blobs no other reference uses, and the unpacked
 * rootfs, go too. */
int kb_image_remove(kb_image_store *st, const char *ref, char *err,
    size_t errlen);

/* The image config's runtime part (OCI image config "config" object). */
struct kb_image_config {
	char digest[80];   /* manifest digest, "sha256:<hex>" */
	char **env;        /* "K=V", NULL-terminated; may be NULL */
	char **entrypoint; /* NULL-terminated; may be NULL */
	char **cmd;        /* NULL-terminated; may be NULL */
	char *working_dir; /* may be NULL */
	char *user;        /* may be NULL */
};
void kb_image_config_free(struct kb_image_config *c);

/* Is ref in the store? 0 with *present either way. */
int kb_image_present(kb_image_store *st, const char *ref, int *present);

/* Resolve ref: its config into *cfg (may be NULL; free with
 * kb_image_config_free — harmless after an error too, *cfg is zeroed
 * first) and the path of its unpacked rootfs into rootfs[len], unpacking
 * it first if needed (layers in order, whiteouts and opaque dirs applied,
 * ownership and modes kept, no path escaping the rootfs: KB_EINVAL, and
 * nothing is left of a failed unpack). Concurrent callers for one image
 * wait for a single unpack. The rootfs is shared: mount it read-only
 * (overlay lower), never write into it. */
int kb_image_rootfs(kb_image_store *st, const char *ref,
    struct kb_image_config *cfg, char *rootfs, size_t len, char *err,
    size_t errlen);

/* Build an OCI image from a directory tree (each regular file, dir and
 * symlink; one layer) and add it as ref with the given config (entrypoint,
 * cmd, env may be NULL). build.sh makes the busybox image with this through
 * `kubus image build`. */
int kb_image_build(kb_image_store *st, const char *ref, const char *rootdir,
    const struct kb_image_config *cfg, char *err, size_t errlen);

/* Write ref as an oci-archive tar at path (written beside it, then
 * renamed): oci-layout, index.json naming the image by its normalised ref
 * (annotations org.opencontainers.image.ref.name and
 * io.containerd.image.name), its blobs. kb_image_import reads it back. */
int kb_image_export(kb_image_store *st, const char *ref, const char *path,
    char *err, size_t errlen);

#endif
