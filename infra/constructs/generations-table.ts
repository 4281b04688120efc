import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  ADMISSION_INDEX,
  ADMISSION_KEY,
  admissionItemId,
  DISPATCHER_STATE_ID,
} from '../../functions/shared/admission.js';
import { BATCH_INDEX } from '../../functions/shared/batch.js';
import { INDEX_KEY, INDEX_NAME } from '../../functions/shared/generation-index.js';
import type { Grantee } from './storage.js';

export interface GenerationsTableProps {
  /** Keep the table (deletion protection on, retained) when the stack is deleted. */
  readonly retainOnDelete: boolean;
  /**
   * A customer-managed key to encrypt with (the bucket's, when it has one).
   * @default the AWS managed key of DynamoDB (`aws/dynamodb`)
   */
  readonly encryptionKey?: IKey;
}

/** What a function may do with the index: named actions only. */
export type IndexAccess = 'read' | 'get' | 'write';

/**
 * What a function may do with the admission queue's items, each a named set of actions:
 * `enqueue` (GetItem, PutItem, UpdateItem: a retried Admit's new token, its lane's number),
 * `view` (GetItem, BatchGetItem of a place and the lanes' counters, Query on the queue's indexes),
 * `grant` (UpdateItem, PutItem of the dispatcher's state and lease, Query), `note` (UpdateItem),
 * `release` (DeleteItem, the dispatcher's lease too; UpdateItem of the lanes' counters item alone,
 * when the head of a lane leaves).
 */
export type QueueAccess = 'enqueue' | 'view' | 'grant' | 'note' | 'release';

const QUEUE_ACTIONS: Readonly<Record<QueueAccess, readonly string[]>> = {
  enqueue: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  view: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
  grant: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem'],
  note: ['dynamodb:UpdateItem'],
  release: ['dynamodb:DeleteItem'],
};

/**
 * The generations index (see docs/decisions/0016-generations-index.md): one item per generation,
 * keyed by its id, with two global secondary indexes sorted by `createdKey` (`createdAt#id`):
 * `byCreated` (every generation; one partition) and `byStatus` (by status). On-demand capacity,
 * point-in-time recovery, encrypted at rest, and deletion protection when the images are retained.
 */
export class GenerationsTable extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string, props: GenerationsTableProps) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: INDEX_KEY.id, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      ...(props.encryptionKey
        ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.encryptionKey }
        : { encryption: TableEncryption.AWS_MANAGED }),
      deletionProtection: props.retainOnDelete,
      removalPolicy: props.retainOnDelete ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    for (const [indexName, partition] of [
      [INDEX_NAME.byCreated, INDEX_KEY.listPartition],
      [INDEX_NAME.byStatus, INDEX_KEY.status],
    ] as const) {
      this.table.addGlobalSecondaryIndex({
        indexName,
        partitionKey: { name: partition, type: AttributeType.STRING },
        sortKey: { name: INDEX_KEY.sort, type: AttributeType.STRING },
        // Lists show whole generations: projecting everything saves a read per item.
        projectionType: ProjectionType.ALL,
      });
    }
    // A batch's generations, by batch and count (`batchCount`), in line order: keys only, so a
    // batch's counts are cheap Queries (docs/decisions/0034-batches.md).
    this.table.addGlobalSecondaryIndex({
      indexName: BATCH_INDEX.name,
      partitionKey: { name: BATCH_INDEX.partition, type: AttributeType.STRING },
      sortKey: { name: BATCH_INDEX.sort, type: AttributeType.NUMBER },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    // The admission queue's items (id `admission#…`) are found through two sparse indexes: only
    // items that wait carry `queueLane`, only granted ones `slotAccount`.
    this.table.addGlobalSecondaryIndex({
      indexName: ADMISSION_INDEX.byQueue,
      partitionKey: { name: ADMISSION_KEY.lane, type: AttributeType.STRING },
      sortKey: { name: ADMISSION_KEY.queueKey, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: ADMISSION_INDEX.bySlot,
      partitionKey: { name: ADMISSION_KEY.account, type: AttributeType.STRING },
      sortKey: { name: ADMISSION_KEY.slotKey, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
  }

  /**
   * Grants named actions on the table and its two indexes by name, never a wildcard:
   * `read` = GetItem, BatchGetItem (a page of a batch's generations) and Query; `get` = GetItem alone (one record by id, on the table only);
   * `write` = UpdateItem (every write is one conditional update), on generation records only:
   * never on a key starting `admission#`, which only {@link grantQueue} reaches.
   */
  grant(grantee: Grantee, ...access: IndexAccess[]): void {
    const role = grantee.role as IRole;
    const actions = [
      ...(access.includes('read') ? ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query'] : []),
      ...(access.includes('get') && !access.includes('read') ? ['dynamodb:GetItem'] : []),
    ];
    const resources = [
      this.table.tableArn,
      ...(access.includes('read')
        ? [...Object.values(INDEX_NAME), BATCH_INDEX.name].map(
            (name) => `${this.table.tableArn}/index/${name}`,
          )
        : []),
    ];
    if (actions.length > 0) role.addToPrincipalPolicy(new PolicyStatement({ actions, resources }));
    if (access.includes('write')) {
      // Generation records only: the queue's items (`admission#…`) are written through grantQueue.
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:UpdateItem'],
          resources: [this.table.tableArn],
          conditions: {
            'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': [admissionItemId('*')] },
          },
        }),
      );
    }
    this.table.encryptionKey?.grant(
      role,
      'kms:Decrypt',
      ...(access.includes('write') ? ['kms:GenerateDataKey'] : []),
    );
  }

  /**
   * Grants named sets of actions on the admission queue's items, and only on them: the item
   * actions are limited to keys starting `admission#` (`dynamodb:LeadingKeys`), and Query to the
   * queue's two indexes.
   */
  grantQueue(grantee: Grantee, ...access: QueueAccess[]): void {
    const role = grantee.role as IRole;
    const actions = [...new Set(access.flatMap((kind) => QUEUE_ACTIONS[kind]))].sort();
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions,
        resources: [this.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [admissionItemId('*')] } },
      }),
    );
    if (access.includes('release') && !actions.includes('dynamodb:UpdateItem')) {
      // A released head moves its lane's head on: an update of the counters' item, and of no other.
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:UpdateItem'],
          resources: [this.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [DISPATCHER_STATE_ID] } },
        }),
      );
    }
    if (access.includes('view') || access.includes('grant')) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: Object.values(ADMISSION_INDEX).map((name) => `${this.table.tableArn}/index/${name}`),
        }),
      );
    }
    const writes = access.some((kind) => kind !== 'view');
    this.table.encryptionKey?.grant(role, 'kms:Decrypt', ...(writes ? ['kms:GenerateDataKey'] : []));
  }
}
