/** The single-node Slurm that `tooling/testcluster/slurm-up` starts beside GridEngine. */
export interface SlurmFacts {
  /** Slurm's ClusterName. */
  clusterName: string;
  /** The partition jobs run in. */
  partition: string;
  /** Whether `sacct` answers (slurmdbd with a MariaDB database). */
  accounting: boolean;
}
