// The types of the uPlot build the server serves at /assets/vendor/uplot.js (for checking the
// page's modules; the file itself comes from the installed uplot package, never from here).
import uPlot from "uplot";
export default uPlot;
