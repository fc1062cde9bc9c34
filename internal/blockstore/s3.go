package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	Endpoint  string // http(s)://host[:port]; a bare host means https
	Bucket    string
	AccessKey string
	SecretKey string
	Region    string
	Prefix    string // key prefix inside the bucket, e.g. "ib/"
}

// S3 stores objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW,
// Backblaze B2, Garage, Cloudflare R2, versitygw), keyed by
// PREFIX/SHARD/KEY so listings stay fast. Addressing is chosen by the
// client library: virtual-host style for AWS, path style elsewhere.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
	name   string
}

var _ Store = (*S3)(nil)

// OpenS3 connects to the bucket, creating it if absent.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: an endpoint and a bucket are needed")
	}
	raw := cfg.Endpoint
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("s3: invalid endpoint %q: want http(s)://HOST[:PORT]", cfg.Endpoint)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 2 * time.Minute
	c, err := minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     u.Scheme == "https",
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: 3, // ib's client retries too; an outage should surface, not hang
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", cfg.Endpoint, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	s := &S3{c: c, bucket: cfg.Bucket, prefix: prefix, name: fmt.Sprintf("s3 %s/%s/%s", u.Host, cfg.Bucket, prefix)}
	exists, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	if !exists {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return nil, fmt.Errorf("%s: create bucket: %w", s.name, err)
			}
		}
	}
	return s, nil
}

func (s *S3) String() string { return s.name }

func (s *S3) key(k string) (string, error) {
	if k == "" || strings.ContainsAny(k, `/\`) || k == "." || k == ".." {
		return "", fmt.Errorf("%s: invalid key %q", s.name, k)
	}
	return s.prefix + shard(k) + "/" + k, nil
}

func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.c.PutObject(ctx, s.bucket, k, r, size, minio.PutObjectOptions{
		ContentType:    "application/x-lz4",
		SendContentMd5: true,
	})
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", s.name, key, err)
	}
	return nil
}

func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, k, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // sends the request: not found shows here
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if notFound(err) {
			return nil, fmt.Errorf("%s: %s: %w", s.name, key, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: get %s: %w", s.name, key, err)
	}
	return obj, nil
}

func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	k, err := s.key(key)
	if err != nil {
		return Info{}, err
	}
	st, err := s.c.StatObject(ctx, s.bucket, k, minio.StatObjectOptions{})
	if err != nil {
		if notFound(err) {
			return Info{}, fmt.Errorf("%s: %s: %w", s.name, key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("%s: stat %s: %w", s.name, key, err)
	}
	return Info{Key: key, Size: st.Size, ModTime: st.LastModified}, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, k, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("%s: delete %s: %w", s.name, key, err)
	}
	return nil
}

func (s *S3) List(ctx context.Context, fn func(Info) error) error {
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("%s: list: %w", s.name, obj.Err)
		}
		if err := fn(Info{Key: path.Base(obj.Key), Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if !ok {
		return fmt.Errorf("%s: bucket %s is gone", s.name, s.bucket)
	}
	return nil
}
