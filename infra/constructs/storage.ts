import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { type IRole, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  type LifecycleRule,
  ObjectOwnership,
  StorageClass,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { BucketConfig } from '../config.js';
import { acknowledge, nagResource } from '../nag.js';

export interface StorageProps {
  /**
   * The bucket's part of the stack's configuration (`bucket` in infra/config.ts): encryption,
   * versioning, access logs, lifecycle rules, and whether it is kept when the stack is deleted.
   */
  readonly config: BucketConfig;
}

/** Object-level S3 actions a function may be granted (never a wildcard). */
export type ObjectAction =
  | 's3:GetObject'
  | 's3:GetObjectVersion'
  | 's3:PutObject'
  | 's3:AbortMultipartUpload'
  | 's3:DeleteObject';

export interface ObjectGrant {
  /** Key pattern under which the actions apply, e.g. `generations/*`. */
  readonly keys: string;
  readonly actions: readonly ObjectAction[];
  /** Why the function needs every key under the pattern: recorded with the cdk-nag acknowledgment. */
  readonly why: string;
}

/** The part of a function a grant needs: its own role (every GenerationFunction has one). */
export interface Grantee {
  readonly role?: IRole;
  readonly node: { readonly id: string };
}

const GLACIER_CLASSES = {
  GLACIER_IR: StorageClass.GLACIER_INSTANT_RETRIEVAL,
  GLACIER: StorageClass.GLACIER,
  DEEP_ARCHIVE: StorageClass.DEEP_ARCHIVE,
} as const;

/**
 * The private bucket that keeps every image after DashScope forgets it: all public access
 * blocked, TLS only, encrypted (S3-managed keys, or a KMS key of its own), optionally versioned
 * and with server access logs, lifecycle rules from the configuration, and retained when the
 * stack is deleted unless configured otherwise.
 *
 * Functions get access through {@link grantObjects} and {@link grantList}: named actions on a key
 * pattern, plus the KMS actions those need when the bucket has its own key.
 */
export class Storage extends Construct {
  readonly bucket: Bucket;
  /** The bucket's KMS key, when `encryption` is `kms`. */
  readonly encryptionKey?: Key;
  /** Where S3 writes the bucket's server access logs, when `accessLogs` is on. */
  readonly accessLogsBucket?: Bucket;
  /** KMS actions already granted, by role: each is granted once. */
  readonly #kmsGranted = new Map<IRole, Set<string>>();

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const { config } = props;
    // Images are the product: they outlive the stack unless configured otherwise. The key goes
    // with the bucket, or the retained objects could never be read again.
    const removalPolicy = config.retainOnDelete ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    if (config.encryption === 'kms') {
      this.encryptionKey = new Key(this, 'ImagesKey', {
        description: 'Encrypts the SD 3.5 images bucket',
        enableKeyRotation: true,
        removalPolicy,
      });
    }

    this.bucket = new Bucket(this, 'Images', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      ...(this.encryptionKey
        ? { encryption: BucketEncryption.KMS, encryptionKey: this.encryptionKey, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      enforceSSL: true,
      versioned: config.versioned,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: lifecycleRules(config),
      removalPolicy,
      // Deleted with the stack: emptied first, or CloudFormation cannot delete it.
      autoDeleteObjects: !config.retainOnDelete,
    });
    const cfnBucket = this.bucket.node.defaultChild as CfnBucket;
    // Request files under requests/ reach the trigger through EventBridge. Set on the bucket itself
    // rather than with `eventBridgeEnabled`, which adds a custom-resource Lambda to do the same.
    cfnBucket.notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };

    if (config.accessLogs) {
      this.accessLogsBucket = this.createAccessLogsBucket(config, removalPolicy);
      cfnBucket.loggingConfiguration = {
        destinationBucketName: this.accessLogsBucket.bucketName,
        logFilePrefix: ACCESS_LOG_PREFIX,
      };
    } else {
      acknowledge(
        this.bucket,
        'AwsSolutions-S1',
        'Server access logs of the images bucket are off by default (generation.bucket.accessLogs turns them on): only this stack’s function roles and presigned links read or write it, and CloudTrail data events can audit object access',
      );
    }
  }

  /**
   * Lets `grantee` perform `actions` on the objects matching `keys`, with the KMS actions they need
   * when the bucket has its own key. The key pattern is a wildcard by nature (object keys are per
   * generation or per request file): the cdk-nag acknowledgment records `why`.
   */
  grantObjects(grantee: Grantee, grant: ObjectGrant): void {
    const role = roleOf(grantee);
    const resource = this.bucket.arnForObjects(grant.keys);
    role.addToPrincipalPolicy(new PolicyStatement({ actions: [...grant.actions], resources: [resource] }));
    acknowledge(role, `AwsSolutions-IAM5[Resource::${nagResource(this, resource)}]`, grant.why);
    if (this.encryptionKey) {
      const reads = grant.actions.some((action) => action.startsWith('s3:Get'));
      const writes = grant.actions.includes('s3:PutObject');
      // A streamed (multipart) upload reads back its own encrypted parts: writers decrypt too.
      const granted = this.#kmsGranted.get(role) ?? new Set<string>();
      this.#kmsGranted.set(role, granted);
      const kmsActions = [
        ...(reads || writes ? ['kms:Decrypt'] : []),
        ...(writes ? ['kms:GenerateDataKey'] : []),
      ].filter((action) => !granted.has(action));
      for (const action of kmsActions) granted.add(action);
      if (kmsActions.length > 0) {
        role.addToPrincipalPolicy(
          new PolicyStatement({ actions: kmsActions, resources: [this.encryptionKey.keyArn] }),
        );
      }
    }
  }

  /**
   * Lets `grantee` list the bucket's keys. Not narrowed by an `s3:prefix` condition: S3 answers a
   * missing key with 404 NoSuchKey only to a principal allowed to list the bucket (403 otherwise),
   * and a GetObject request carries no `s3:prefix`, so a condition would turn every "not there yet"
   * into an access error.
   */
  grantList(grantee: Grantee): void {
    roleOf(grantee).addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
    );
  }

  private createAccessLogsBucket(config: BucketConfig, removalPolicy: RemovalPolicy): Bucket {
    // S3 server access logs can only be delivered to an SSE-S3 bucket.
    const logs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'Expire', expiration: Duration.days(config.accessLogsExpirationDays) }],
      removalPolicy,
      // Never empty while the images bucket logs into it: deleted with the stack, emptied first.
      autoDeleteObjects: !config.retainOnDelete,
    });
    logs.addToResourcePolicy(
      new PolicyStatement({
        sid: 'S3ServerAccessLogsOfTheImagesBucket',
        principals: [new ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [logs.arnForObjects(`${ACCESS_LOG_PREFIX}*`)],
        conditions: {
          ArnLike: { 'aws:SourceArn': this.bucket.bucketArn },
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
        },
      }),
    );
    acknowledge(
      logs,
      'AwsSolutions-S1',
      'This is the access-log destination of the images bucket; logging it too would need a third bucket (or log into itself, which S3 advises against)',
    );
    return logs;
  }
}

/** Where the images bucket's access logs go in the access-logs bucket. */
const ACCESS_LOG_PREFIX = 'images/';

function roleOf(grantee: Grantee): IRole {
  if (!grantee.role) throw new Error(`Function ${grantee.node.id} has no role to grant to`);
  return grantee.role;
}

/**
 * Incomplete multipart uploads go after a day. `requests/` is cleaned up after the configured
 * days. `generations/` moves to cheaper classes and expires only if configured. Noncurrent
 * versions expire when the bucket is versioned.
 */
function lifecycleRules(config: BucketConfig): LifecycleRule[] {
  const rules: LifecycleRule[] = [
    { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
    { id: 'CleanUpRequests', prefix: 'requests/', expiration: Duration.days(config.requestsExpireAfterDays) },
  ];
  const transitions = [
    ...(config.infrequentAccessAfterDays === undefined
      ? []
      : [
          {
            storageClass: StorageClass.INFREQUENT_ACCESS,
            transitionAfter: Duration.days(config.infrequentAccessAfterDays),
          },
        ]),
    ...(config.glacierAfterDays === undefined
      ? []
      : [
          {
            storageClass: GLACIER_CLASSES[config.glacierStorageClass],
            transitionAfter: Duration.days(config.glacierAfterDays),
          },
        ]),
  ];
  if (transitions.length > 0 || config.expireAfterDays !== undefined) {
    rules.push({
      id: 'Generations',
      prefix: 'generations/',
      ...(transitions.length > 0 ? { transitions } : {}),
      ...(config.expireAfterDays === undefined ? {} : { expiration: Duration.days(config.expireAfterDays) }),
    });
  }
  if (config.versioned) {
    rules.push({
      id: 'NoncurrentVersions',
      noncurrentVersionExpiration: Duration.days(config.noncurrentVersionExpirationDays),
      expiredObjectDeleteMarker: true,
    });
  }
  return rules;
}
