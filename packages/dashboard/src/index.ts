export type {
  Dashboard,
  DashboardActions,
  DashboardListen,
  DashboardOptions,
} from "./dashboard.js";
export { createDashboard } from "./dashboard.js";
