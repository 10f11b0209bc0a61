set terminal pngcairo size 1000,500 font 'sans,10'
# make bench PART=rollout; redraw: cd bench && gnuplot rollout.gp
set output 'rollout.png'
set title 'canary rollout under load: new connections/s per version (baton status --json every 200 ms)'
set xlabel 'seconds'
set ylabel 'new connections / s'
set grid
set key below
set yrange [0:*]
set arrow from 2.078, graph 0 to 2.078, graph 1 nohead dt 2 lc rgb "gray40"
set label "v2 10%" at 2.078, graph 0.96 offset 0.3,0 tc rgb "gray20"
set arrow from 5.077, graph 0 to 5.077, graph 1 nohead dt 2 lc rgb "gray40"
set label "v2 50%" at 5.077, graph 0.96 offset 0.3,0 tc rgb "gray20"
set arrow from 8.077, graph 0 to 8.077, graph 1 nohead dt 2 lc rgb "gray40"
set label "v2 100%" at 8.077, graph 0.96 offset 0.3,0 tc rgb "gray20"
plot 'rollout.dat' using 1:2 with lines lw 2 title 'v1 (old)', '' using 1:3 with lines lw 2 title 'v2 (canary)'
