#!/usr/bin/env python3
"""Generate the embedded default corpus: a deterministic English->French mini-language.

Usage::

    python scripts/make_toy_data.py [--seed 1234] [--out data/toy] [--check]

Sentences are drawn from a small structured grammar (see the ``NP``/``VP``/``Clause``
dataclasses below) and rendered into both languages, so the French side is a
deterministic *function* of the English side: ``translate_sentence`` parses any
sentence of the mini-language back into its structure and renders the French,
and every generated pair satisfies ``translate_sentence(en) == fr``.

Conventions: all lowercase, tokens separated by single spaces, final `` .``
token. French elisions are glued to the next word (``l'homme``, ``n'aime``,
``j'ai``, ``d'oranges``); contractions are applied (``du``, ``des``, ``au``,
``aux``). "Words per sentence" counts every space-separated token, the final
"." included. "you" is always the formal/plural "vous" (and plural for adjective
agreement), "they" is always "ils", and gender-neutral English nouns have one
fixed French gender ("child" -> "enfant", masculine).

What a model has to learn: gender and number agreement of determiners
(le/la/l'/les, un/une, ce/cet/cette/ces, mon/ma/mes...) and adjectives, French
adjective placement (most after the noun, petit/grand/vieux/beau/... before),
verb conjugation by person and number, negation ne ... pas (with un/une/des
-> de after a negated verb), object pronouns moved before the verb, possessive
reordering ("the king 's horse" -> "le cheval du roi"), agreement at a
distance through relative clauses and coordinated subjects, prepositions with
contractions, and verbs whose preposition appears or disappears in French.

Samples, of increasing difficulty::

    she sleeps .
    elle dort .

    the old woman eats the red apples .
    la vieille femme mange les pommes rouges .

    i do not have any yellow bananas .
    je n'ai pas de bananes jaunes .

    the old king 's new horses wait for you in front of the castle .
    les nouveaux chevaux du vieux roi vous attendent devant le château .

    the queen who does not see the boy is happy but the princess and the aunt are tired .
    la reine qui ne voit pas le garçon est heureuse mais la princesse et la tante sont fatiguées .
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random
from typing import Callable, Sequence, TypeVar, Union

# --------------------------------------------------------------------------
# Data tables
# --------------------------------------------------------------------------

DEFAULT_SEED = 1234
SPLIT_SIZES: dict[str, int] = {"train": 20000, "dev": 1000, "test": 1000}
MIN_WORDS, MAX_WORDS = 3, 25
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "toy"

# Semantic classes: P person, A animal, F food, D drink, T portable thing,
# R readable, W writable, M song-like (sing / listen to), V vehicle,
# S furniture / surface (on, under), C climbable, L place (in, near ...).
# Columns: english[/plural]  french[/plural]  gender  classes.
# Plurals are derived by rule unless given.
NOUNS_TABLE = """
king                 roi                          m P
queen                reine                        f P
man/men              homme                        m P
woman/women          femme                        f P
boy                  garçon                       m P
girl                 fille                        f P
brother              frère                        m P
sister               sœur                         f P
father               père                         m P
mother               mère                         f P
prince               prince                       m P
princess             princesse                    f P
uncle                oncle                        m P
aunt                 tante                        f P
actor                acteur                       m P
actress              actrice                      f P
nephew               neveu                        m P
niece                nièce                        f P
waiter               serveur                      m P
waitress             serveuse                     f P
husband              époux                        m P
wife/wives           épouse                       f P
grandfather          grand-père/grands-pères      m P
grandmother          grand-mère/grands-mères      f P
emperor              empereur                     m P
empress              impératrice                  f P
duke                 duc                          m P
duchess              duchesse                     f P
wizard               sorcier                      m P
witch                sorcière                     f P
child/children       enfant                       m P
baby                 bébé                         m P
teacher              professeur                   m P
doctor               médecin                      m P
student              étudiant                     m P
farmer               fermier                      m P
baker                boulanger                    m P
soldier              soldat                       m P
sailor               marin                        m P
painter              peintre                      m P
singer               chanteur                     m P
chef                 chef                         m P
thief/thieves        voleur                       m P
tourist              touriste                     m P
knight               chevalier                    m P
neighbour            voisin                       m P
friend               ami                          m P
nurse                infirmière                   f P
dog                  chien                        m A
cat                  chat                         m A
horse                cheval                       m A
bird                 oiseau                       m A
mouse/mice           souris                       f A
lion                 lion                         m A
lioness              lionne                       f A
tiger                tigre                        m A
tigress              tigresse                     f A
bull                 taureau                      m A
cow                  vache                        f A
rooster              coq                          m A
hen                  poule                        f A
rabbit               lapin                        m A
fox                  renard                       m A
wolf/wolves          loup                         m A
bear                 ours                         m A
duck                 canard                       m A
goat                 chèvre                       f A
frog                 grenouille                   f A
owl                  hibou/hiboux                 m A
elephant             éléphant                     m A
monkey               singe                        m A
bee                  abeille                      f A
spider               araignée                     f A
turtle               tortue                       f A
donkey               âne                          m A
squirrel             écureuil                     m A
goose/geese          oie                          f A
apple                pomme                        f F
pear                 poire                        f F
orange               orange                       f F
banana               banane                       f F
cake                 gâteau                       m F
egg                  œuf                          m F
sandwich             sandwich                     m F
cookie               biscuit                      m F
strawberry           fraise                       f F
cherry               cerise                       f F
lemon                citron                       m F
tomato/tomatoes      tomate                       f F
carrot               carotte                      f F
onion                oignon                       m F
pie                  tarte                        f F
peach                pêche                        f F
mushroom             champignon                   m F
coffee               café                         m D
tea                  thé                          m D
juice                jus                          m D
lemonade             limonade                     f D
wine                 vin                          m D
milk                 lait                         m D
book                 livre                        m TRW
letter               lettre                       f TRW
newspaper            journal                      m TR
map                  carte                        f TR
poem                 poème                        m RWM
story                histoire                     f RW
song                 chanson                      f WM
key                  clé                          f T
ball                 balle                        f T
box                  boîte                        f T
bag                  sac                          m T
hat                  chapeau                      m T
shoe                 chaussure                    f T
cup                  tasse                        f T
glass                verre                        m T
plate                assiette                     f T
bottle               bouteille                    f T
knife/knives         couteau                      m T
spoon                cuillère                     f T
pen                  stylo                        m T
flower               fleur                        f T
toy                  jouet                        m T
doll                 poupée                       f T
gift                 cadeau                       m T
ring                 bague                        f T
clock                horloge                      f T
coat                 manteau                      m T
dress                robe                         f T
umbrella             parapluie                    m T
painting             tableau                      m T
jewel                bijou/bijoux                 m T
stone                pierre                       f T
lamp                 lampe                        f T
candle               bougie                       f T
mirror               miroir                       m T
basket               panier                       m T
sword                épée                         f T
crown                couronne                     f T
phone                téléphone                    m T
computer             ordinateur                   m T
car                  voiture                      f V
boat                 bateau                       m V
train                train                        m V
bus                  bus                          m V
plane                avion                        m V
table                table                        f S
chair                chaise                       f S
bed                  lit                          m S
sofa                 canapé                       m S
tree                 arbre                        m SC
bridge               pont                         m S
roof                 toit                         m SC
wall                 mur                          m SC
rock                 rocher                       m SC
bench                banc                         m S
garden               jardin                       m L
house                maison                       f L
kitchen              cuisine                      f L
park                 parc                         m L
forest               forêt                        f L
river                rivière                      f L
lake                 lac                          m L
beach                plage                        f L
mountain             montagne                     f LC
city                 ville                        f L
village              village                      m L
market               marché                       m L
school               école                        f L
church               église                       f L
castle               château                      m L
station              gare                         f L
hospital             hôpital                      m L
hotel                hôtel                        m L
library              bibliothèque                 f L
museum               musée                        m L
shop                 magasin                      m L
farm                 ferme                        f L
street               rue                          f L
island               île                          f L
palace               palais                       m L
office               bureau                       m L
tower                tour                         f LC
theatre              théâtre                      m L
airport              aéroport                     m L
bakery               boulangerie                  f L
"""

# Columns: english  french ms[/fs[/mp/fp]]  position (pre: before the noun in
# French)  classes it can describe.  Missing French forms are derived by rule.
ADJECTIVES_TABLE = """
small      petit                               pre  PATFSLV
big        grand                               pre  PATSLV
old        vieux/vieille/vieux/vieilles        pre  PATSLV
young      jeune                               pre  PA
new        nouveau/nouvelle/nouveaux/nouvelles pre  TRSLV
beautiful  beau/belle/beaux/belles             pre  PATSLVM
good       bon                                 pre  PAFDTRM
bad        mauvais                             pre  PAFDTRM
pretty     joli                                pre  PATSL
red        rouge                               post ATSVF
blue       bleu                                post ATSV
green      vert                                post ATSVF
white      blanc/blanche                       post ATSV
black      noir                                post ATSV
yellow     jaune                               post ATSVF
grey       gris                                post ATSV
brown      marron/marron/marron/marron         post ATSV
pink       rose                                post ATSV
purple     violet/violette                     post TSV
heavy      lourd                               post TSV
light      léger                               post TSV
clean      propre                              post TSLV
dirty      sale                                post TSLVA
empty      vide                                post TLV
full       plein                               post TL
hot        chaud                               post FD
cold       froid                               post FD
round      rond                                post TSF
broken     cassé                               post TSV
open       ouvert                              post TL
closed     fermé                               post TL
wet        mouillé                             post TSA
soft       doux/douce/doux/douces              post TSF
strange    étrange                             post PATSLVFDRM
famous     célèbre                             post PLRM
expensive  cher                                post TVFDL
fresh      frais/fraîche/frais/fraîches        post FD
delicious  délicieux                           post FD
sweet      sucré                               post FD
bitter     amer                                post FD
huge       énorme                              post ATSLV
modern     moderne                             post TLV
ancient    ancien                              post TSLR
strong     fort                                post PAD
fast       rapide                              post PAV
slow       lent                                post PAV
noisy      bruyant                             post PALV
dangerous  dangereux                           post PAL
happy      heureux                             post PA
sad        triste                              post PA
tired      fatigué                             post PA
angry      fâché                               post P
sick       malade                              post PA
rich       riche                               post P
poor       pauvre                              post P
proud      fier                                post PA
brave      courageux                           post PA
lazy       paresseux                           post PA
clever     intelligent                         post PA
kind       gentil/gentille                     post PA
shy        timide                              post PA
polite     poli                                post P
funny      drôle                               post PA
curious    curieux                             post PA
jealous    jaloux/jalouse/jaloux/jalouses      post P
busy       occupé                              post P
"""

# Columns: english | french infinitive [+ preposition] | subject classes |
# object classes ("-": intransitive) | flags.
# Flags: o object optional, p object may be a pronoun (me, him ...),
# d dative "to" + person, l location PP, c companion PP (with, without),
# t "to" + place (required), f "from" + place (alternative to t).
VERBS_TABLE = """
eat        | manger      | PA | F       | olc
drink      | boire       | PA | D       | olc
see        | voir        | PA | PATVSLF | pl
watch      | regarder    | P  | PAV     | pl
like       | aimer       | PA | PATFDVL | p
love       | adorer      | P  | PATFDVL | p
hate       | détester    | PA | PATFD   | p
want       | vouloir     | PA | TFDVA   |
take       | prendre     | P  | TFDV    | l
buy        | acheter     | P  | TFDVA   | l
sell       | vendre      | P  | TFVA    | d
find       | trouver     | PA | TFA     | pl
lose       | perdre      | P  | T       | l
carry      | porter      | PA | T       | l
open       | ouvrir      | P  | T       |
close      | fermer      | P  | T       |
clean      | nettoyer    | P  | TSVL    |
wash       | laver       | P  | TVA     |
cook       | cuisiner    | P  | F       | olc
bring      | apporter    | PA | TFD     | d
hold       | tenir       | P  | TA      |
draw       | dessiner    | P  | PATSLV  | olc
paint      | peindre     | P  | TSLV    | olc
write      | écrire      | P  | W       | olc
read       | lire        | P  | R       | olc
know       | connaître   | PA | PL      | p
hear       | entendre    | PA | PAM     | p
meet       | rencontrer  | PA | PA      | pl
help       | aider       | PA | PA      | p
call       | appeler     | P  | PA      | p
follow     | suivre      | PA | PA      | pl
kiss       | embrasser   | P  | PA      | p
feed       | nourrir     | P  | A       | l
chase      | chasser     | PA | A       | l
visit      | visiter     | P  | L       |
build      | construire  | P  | LS      |
break      | casser      | PA | T       |
fix        | réparer     | P  | TV      |
choose     | choisir     | P  | TFDVA   |
forget     | oublier     | P  | PT      | p
prefer     | préférer    | PA | TFDVAL  |
admire     | admirer     | P  | PATVL   | p
wait for   | attendre    | PA | PAV     | pl
look for   | chercher    | PA | PAT     | pl
listen to  | écouter     | PA | PM      | p
throw      | lancer      | P  | T       |
catch      | attraper    | PA | TA      |
hide       | cacher      | PA | T       | l
push       | pousser     | PA | TSV     |
receive    | recevoir    | P  | T       |
give       | donner      | P  | TFD     | d
show       | montrer     | P  | TAV     | d
send       | envoyer     | P  | T       | d
offer      | offrir      | P  | TFD     | d
lend       | prêter      | P  | TV      | d
have       | avoir       | PA | TFDVA   |
sing       | chanter     | PA | M       | olc
drive      | conduire    | P  | V       | l
enter      | entrer dans | PA | L       |
climb      | grimper à   | PA | C       |
answer     | répondre à  | P  | P       |
obey       | obéir à     | PA | P       |
sleep      | dormir      | PA | -       | lc
run        | courir      | PA | -       | lc
walk       | marcher     | PA | -       | lc
swim       | nager       | PA | -       | lc
dance      | danser      | P  | -       | lc
laugh      | rire        | P  | -       | lc
cry        | pleurer     | P  | -       | lc
smile      | sourire     | P  | -       | lc
work       | travailler  | P  | -       | lc
play       | jouer       | PA | -       | lc
wait       | attendre    | PA | -       | lc
jump       | sauter      | PA | -       | lc
fall       | tomber      | PA | -       | l
shout      | crier       | P  | -       | lc
travel     | voyager     | P  | -       | c
arrive     | arriver     | PA | -       | lc
go         | aller       | PA | -       | t
come       | venir       | PA | -       | tf
return     | rentrer     | PA | -       | tf
"""

# French present tense: je, tu, il/elle, nous, vous, ils/elles.  Regular -er,
# -ir (choisir type) and -re (vendre type) verbs are conjugated by rule.
FR_IRREGULAR: dict[str, str] = {
    "être": "suis es est sommes êtes sont",
    "avoir": "ai as a avons avez ont",
    "aller": "vais vas va allons allez vont",
    "venir": "viens viens vient venons venez viennent",
    "voir": "vois vois voit voyons voyez voient",
    "boire": "bois bois boit buvons buvez boivent",
    "vouloir": "veux veux veut voulons voulez veulent",
    "prendre": "prends prends prend prenons prenez prennent",
    "ouvrir": "ouvre ouvres ouvre ouvrons ouvrez ouvrent",
    "offrir": "offre offres offre offrons offrez offrent",
    "tenir": "tiens tiens tient tenons tenez tiennent",
    "peindre": "peins peins peint peignons peignez peignent",
    "écrire": "écris écris écrit écrivons écrivez écrivent",
    "lire": "lis lis lit lisons lisez lisent",
    "connaître": "connais connais connaît connaissons connaissez connaissent",
    "suivre": "suis suis suit suivons suivez suivent",
    "dormir": "dors dors dort dormons dormez dorment",
    "courir": "cours cours court courons courez courent",
    "rire": "ris ris rit rions riez rient",
    "sourire": "souris souris sourit sourions souriez sourient",
    "recevoir": "reçois reçois reçoit recevons recevez reçoivent",
    "construire": "construis construis construit construisons construisez construisent",
    "conduire": "conduis conduis conduit conduisons conduisez conduisent",
    "acheter": "achète achètes achète achetons achetez achètent",
    "appeler": "appelle appelles appelle appelons appelez appellent",
    "préférer": "préfère préfères préfère préférons préférez préfèrent",
    "nettoyer": "nettoie nettoies nettoie nettoyons nettoyez nettoient",
    "envoyer": "envoie envoies envoie envoyons envoyez envoient",
}
EN_IRREGULAR_3SG: dict[str, str] = {"have": "has"}

# English determiners: number ("s" singular only, "p" plural only, "b" both),
# weight when drawn for a subject/object.  "any" only follows a negated verb.
DETERMINERS: list[tuple[str, str, float]] = [
    ("the", "b", 45), ("a", "s", 14), ("some", "p", 8), ("this", "s", 5),
    ("these", "p", 5), ("my", "b", 8), ("your", "b", 4), ("our", "b", 4),
    ("their", "b", 4), ("two", "p", 3), ("three", "p", 2), ("four", "p", 1),
    ("five", "p", 1),
]
ANY = "any"
FR_NUMBERS: dict[str, str] = {"two": "deux", "three": "trois", "four": "quatre", "five": "cinq"}
# (masc sg, fem sg, plural) for determiners that simply agree.
FR_SIMPLE_DETS: dict[str, tuple[str, str, str]] = {
    "the": ("le", "la", "les"), "a": ("un", "une", "des"),
    "your": ("votre", "votre", "vos"), "our": ("notre", "notre", "nos"),
    "their": ("leur", "leur", "leurs"),
}

# Subject pronouns: french, person, plural, feminine (for adjective agreement).
SUBJECT_PRONOUNS: dict[str, tuple[str, int, bool, bool]] = {
    "i": ("je", 1, False, False), "you": ("vous", 2, True, False),
    "he": ("il", 3, False, False), "she": ("elle", 3, False, True),
    "we": ("nous", 1, True, False), "they": ("ils", 3, True, False),
}
OBJECT_PRONOUNS: dict[str, str] = {
    "me": "me", "you": "vous", "him": "le", "her": "la", "us": "nous", "them": "les",
}
# Object pronouns a subject may not take (that would need "myself" ...).
REFLEXIVE_CLASH: dict[str, tuple[str, ...]] = {
    "i": ("me", "us"), "we": ("me", "us"), "you": ("you",),
}

PREPOSITIONS: dict[str, str] = {
    "in front of": "devant", "next to": "à côté de", "far from": "loin de",
    "in": "dans", "on": "sur", "under": "sous", "near": "près de",
    "behind": "derrière", "with": "avec", "without": "sans", "to": "à", "from": "de",
}
PLACE_PREPS = ["in", "near", "behind", "in front of", "next to", "far from"]
SURFACE_PREPS = ["on", "under", "near", "behind", "next to"]
COMPANION_PREPS = ["with", "without"]
CONJUNCTIONS: dict[str, str] = {"and": "et", "but": "mais"}

# Gendered pairs (en_masc, en_fem, fr_masc, fr_fem): no word repeats on its
# side.  Only "prince" and "lion" are spelled the same in both languages.
GENDERED_PAIRS: list[tuple[str, str, str, str]] = [
    ("king", "queen", "roi", "reine"),
    ("man", "woman", "homme", "femme"),
    ("boy", "girl", "garçon", "fille"),
    ("brother", "sister", "frère", "sœur"),
    ("father", "mother", "père", "mère"),
    ("prince", "princess", "prince", "princesse"),
    ("uncle", "aunt", "oncle", "tante"),
    ("actor", "actress", "acteur", "actrice"),
    ("nephew", "niece", "neveu", "nièce"),
    ("waiter", "waitress", "serveur", "serveuse"),
    ("husband", "wife", "époux", "épouse"),
    ("grandfather", "grandmother", "grand-père", "grand-mère"),
    ("emperor", "empress", "empereur", "impératrice"),
    ("duke", "duchess", "duc", "duchesse"),
    ("wizard", "witch", "sorcier", "sorcière"),
    ("lion", "lioness", "lion", "lionne"),
    ("tiger", "tigress", "tigre", "tigresse"),
    ("bull", "cow", "taureau", "vache"),
    ("rooster", "hen", "coq", "poule"),
]

FR_VOWELS = "aeiouàâäéèêëîïôöùûüœæ"
FR_H_MUET = ("homme", "hôtel", "hôpita", "horloge", "histoire", "heure", "herbe", "hiver")
FR_ELIDABLE = ("le", "la", "je", "me", "ne", "de", "que")
FR_CONTRACTIONS: dict[tuple[str, str], str] = {
    ("de", "le"): "du", ("de", "les"): "des", ("à", "le"): "au", ("à", "les"): "aux",
}
# Masculine singular forms used before a vowel sound: un bel homme.
FR_PRE_VOWEL_FORMS: dict[str, str] = {"beau": "bel", "vieux": "vieil", "nouveau": "nouvel"}

# Generation weights.
CLAUSES_PER_SENTENCE = ([1, 2, 3], [0.80, 0.16, 0.04])
CLAUSE_KINDS = (
    ["intrans", "trans", "ditrans", "move", "be_adj", "be_pp"],
    [0.20, 0.40, 0.06, 0.08, 0.17, 0.09],
)
REL_CLAUSE_KINDS = (["intrans", "trans", "be_adj"], [0.35, 0.45, 0.20])
P_PLURAL, P_NEGATION, P_PRONOUN_SUBJ, P_PRONOUN_OBJ = 0.35, 0.2, 0.3, 0.2
P_COORD_SUBJ, P_RELATIVE, P_POSSESSIVE, P_DROP_OBJ = 0.07, 0.10, 0.06, 0.3
P_DATIVE, P_LOCATION, P_COMPANION = 0.6, 0.25, 0.15
P_ADJ_COUNT = {"full": [0.62, 0.30, 0.08], "small": [0.75, 0.25, 0.0]}

# --------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------


def _en_suffix_s(word: str) -> str:
    """English plural / third person singular: box->boxes, city->cities, dog->dogs."""
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _en_noun_plural(word: str) -> str:
    return word + "s" if word.endswith("o") else _en_suffix_s(word)


def _fr_noun_plural(word: str) -> str:
    if word.endswith(("s", "x", "z")):
        return word
    if word.endswith(("eau", "au", "eu")):
        return word + "x"
    if word.endswith("al"):
        return word[:-2] + "aux"
    return word + "s"


def _fr_feminine(ms: str) -> str:
    endings = (("eux", "euse"), ("if", "ive"), ("er", "ère"), ("el", "elle"), ("en", "enne"), ("on", "onne"))
    for masc, fem in endings:
        if ms.endswith(masc):
            return ms[: -len(masc)] + fem
    return ms if ms.endswith("e") else ms + "e"


def _fr_adj_plural(word: str) -> str:
    if word.endswith(("s", "x")):
        return word
    if word.endswith("eau"):
        return word + "x"
    if word.endswith("al"):
        return word[:-2] + "aux"
    return word + "s"


def _fr_conjugate(infinitive: str) -> tuple[str, ...]:
    """Present tense forms (je, tu, il, nous, vous, ils)."""
    if infinitive in FR_IRREGULAR:
        return tuple(FR_IRREGULAR[infinitive].split())
    stem, ending = infinitive[:-2], infinitive[-2:]
    if ending == "er":
        nous = stem + "eons" if stem.endswith("g") else stem + "ons"
        if stem.endswith("c"):
            nous = stem[:-1] + "çons"
        return (stem + "e", stem + "es", stem + "e", nous, stem + "ez", stem + "ent")
    if ending == "ir":
        return (stem + "is", stem + "is", stem + "it", stem + "issons", stem + "issez", stem + "issent")
    if ending == "re":
        return (stem + "s", stem + "s", stem, stem + "ons", stem + "ez", stem + "ent")
    raise ValueError(f"cannot conjugate {infinitive!r}")


@dataclass(frozen=True)
class Noun:
    en_sg: str
    en_pl: str
    fr_sg: str
    fr_pl: str
    fem: bool
    classes: str


@dataclass(frozen=True)
class Adjective:
    en: str
    fr: tuple[str, str, str, str]  # masc sg, fem sg, masc pl, fem pl
    pre: bool
    classes: str

    def form(self, fem: bool, plural: bool) -> str:
        return self.fr[2 * plural + fem]


@dataclass(frozen=True)
class Verb:
    en: str  # base form, possibly with a particle: "wait for"
    en_3sg: str
    fr: tuple[str, ...]  # je, tu, il, nous, vous, ils
    fr_prep: str  # French preposition before the object ("entrer dans")
    subj: str
    obj: str  # "" if intransitive
    flags: str


def _load_nouns() -> dict[str, Noun]:
    nouns: dict[str, Noun] = {}
    for line in NOUNS_TABLE.strip().splitlines():
        en, fr, gender, classes = line.split()
        en_sg, _, en_pl = en.partition("/")
        fr_sg, _, fr_pl = fr.partition("/")
        nouns[en_sg] = Noun(en_sg, en_pl or _en_noun_plural(en_sg), fr_sg,
                            fr_pl or _fr_noun_plural(fr_sg), gender == "f", classes)
    return nouns


def _load_adjectives() -> dict[str, Adjective]:
    adjs: dict[str, Adjective] = {}
    for line in ADJECTIVES_TABLE.strip().splitlines():
        en, fr, pos, classes = line.split()
        forms = fr.split("/")
        ms = forms[0]
        fs = forms[1] if len(forms) > 1 else _fr_feminine(ms)
        mp = forms[2] if len(forms) > 2 else _fr_adj_plural(ms)
        fp = forms[3] if len(forms) > 3 else fs + "s"
        adjs[en] = Adjective(en, (ms, fs, mp, fp), pos == "pre", classes)
    return adjs


def _load_verbs() -> dict[str, Verb]:
    verbs: dict[str, Verb] = {}
    for line in VERBS_TABLE.strip().splitlines():
        en, fr, subj, obj, flags = (field.strip() for field in line.split("|"))
        head, *particle = en.split()
        en_3sg = " ".join([EN_IRREGULAR_3SG.get(head, _en_suffix_s(head)), *particle])
        infinitive, *prep = fr.split()
        verbs[en] = Verb(en, en_3sg, _fr_conjugate(infinitive), " ".join(prep), subj,
                         "" if obj == "-" else obj, flags)
    return verbs


NOUNS = _load_nouns()
ADJECTIVES = _load_adjectives()
VERBS = _load_verbs()
ETRE = _fr_conjugate("être")

# --------------------------------------------------------------------------
# Sentence structure
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pron:
    """A personal pronoun, subject ("i", "she") or object ("me", "her")."""

    word: str


@dataclass(frozen=True)
class NP:
    """Noun phrase.  With ``owner`` ("the king 's horse") ``det`` is None."""

    det: str | None
    noun: str
    plural: bool = False
    adjs: tuple[str, ...] = ()
    owner: NP | None = None
    rel: VP | None = None  # subject relative clause: "who sleeps"


@dataclass(frozen=True)
class Coord:
    """Two coordinated noun phrases as a subject."""

    items: tuple[NP, NP]


@dataclass(frozen=True)
class PP:
    prep: str
    np: NP


@dataclass(frozen=True)
class VP:
    """Verb phrase; ``verb == "be"`` is the copula with ``adj`` or ``pp``."""

    verb: str
    neg: bool = False
    obj: NP | Pron | None = None
    dat: NP | None = None
    pp: PP | None = None
    adj: str | None = None


Subject = Union[Pron, NP, Coord]


@dataclass(frozen=True)
class Clause:
    subj: Subject
    vp: VP


@dataclass(frozen=True)
class Sentence:
    clauses: tuple[Clause, ...]
    conjs: tuple[str, ...] = ()


Agreement = tuple[int, bool, bool]  # person, plural, feminine


def _agreement(subj: Subject) -> Agreement:
    if isinstance(subj, Pron):
        _, person, plural, fem = SUBJECT_PRONOUNS[subj.word]
        return person, plural, fem
    if isinstance(subj, Coord):
        return 3, True, all(NOUNS[np.noun].fem for np in subj.items)
    return 3, subj.plural, NOUNS[subj.noun].fem


# --------------------------------------------------------------------------
# English rendering
# --------------------------------------------------------------------------


def _en_nominal(noun: str, plural: bool, adjs: tuple[str, ...]) -> list[str]:
    n = NOUNS[noun]
    return [*adjs, n.en_pl if plural else n.en_sg]


def _en_np(np: NP) -> list[str]:
    head = _en_nominal(np.noun, np.plural, np.adjs)
    if np.owner is not None:
        out = _en_np(np.owner) + ["'s"] + head
    else:
        det = "an" if np.det == "a" and head[0][0] in "aeiou" else np.det
        out = [det] + head  # type: ignore[list-item]
    if np.rel is not None:
        out += ["who" if "P" in NOUNS[np.noun].classes else "that"]
        out += _en_vp(np.rel, (3, np.plural, False))
    return out


def _en_vp(vp: VP, agr: Agreement) -> list[str]:
    person, plural, _ = agr
    third_sg = person == 3 and not plural
    if vp.verb == "be":
        out = ["am" if (person, plural) == (1, False) else "is" if third_sg else "are"]
        out += ["not"] if vp.neg else []
        return out + ([vp.adj] if vp.adj else _en_pp(vp.pp))  # type: ignore[arg-type]
    verb = VERBS[vp.verb]
    if vp.neg:
        out = ["does" if third_sg else "do", "not", *verb.en.split()]
    else:
        out = (verb.en_3sg if third_sg else verb.en).split()
    if isinstance(vp.obj, Pron):
        out.append(vp.obj.word)
    elif vp.obj is not None:
        out += _en_np(vp.obj)
    if vp.dat is not None:
        out += ["to"] + _en_np(vp.dat)
    if vp.pp is not None:
        out += _en_pp(vp.pp)
    return out


def _en_pp(pp: PP) -> list[str]:
    return pp.prep.split() + _en_np(pp.np)


def _en_subject(subj: Subject) -> list[str]:
    if isinstance(subj, Pron):
        return [subj.word]
    if isinstance(subj, Coord):
        return _en_np(subj.items[0]) + ["and"] + _en_np(subj.items[1])
    return _en_np(subj)


def render_english(sentence: Sentence) -> str:
    out: list[str] = []
    for i, clause in enumerate(sentence.clauses):
        if i:
            out.append(sentence.conjs[i - 1])
        out += _en_subject(clause.subj) + _en_vp(clause.vp, _agreement(clause.subj))
    return " ".join(out + ["."])


# --------------------------------------------------------------------------
# French rendering
# --------------------------------------------------------------------------


def _fr_vowel(word: str) -> bool:
    """Does the word start with a vowel sound (elision: l'homme, but le hibou)?"""
    return word[0] in FR_VOWELS or word.startswith(FR_H_MUET)


def _fr_det(det: str, fem: bool, plural: bool, next_word: str, neg_obj: bool, pre_adj: bool) -> str:
    if det == ANY or (neg_obj and det == "a"):
        return "de"  # je n'ai pas de chat
    if det == "some":
        return "de" if pre_adj else "des"  # de grandes maisons
    if det in FR_NUMBERS:
        return FR_NUMBERS[det]
    if det in ("this", "these"):
        return "ces" if plural else "cette" if fem else "cet" if _fr_vowel(next_word) else "ce"
    if det == "my":
        return "mes" if plural else "ma" if fem and not _fr_vowel(next_word) else "mon"
    masc, femi, plur = FR_SIMPLE_DETS[det]
    return plur if plural else femi if fem else masc


def _fr_np(np: NP, neg_obj: bool = False) -> list[str]:
    noun = NOUNS[np.noun]
    fem, plural = noun.fem, np.plural
    noun_form = noun.fr_pl if plural else noun.fr_sg
    pre = [ADJECTIVES[a] for a in np.adjs if ADJECTIVES[a].pre]
    post = [ADJECTIVES[a] for a in np.adjs if not ADJECTIVES[a].pre]
    pre_forms = []
    for adj in pre:
        form = adj.form(fem, plural)
        if not fem and not plural and _fr_vowel(noun_form):
            form = FR_PRE_VOWEL_FORMS.get(form, form)
        pre_forms.append(form)
    words = pre_forms + [noun_form] + [adj.form(fem, plural) for adj in post]
    det = "the" if np.owner is not None else np.det
    out = [_fr_det(det, fem, plural, words[0], neg_obj, bool(pre))] + words  # type: ignore[arg-type]
    if np.owner is not None:
        out += ["de"] + _fr_np(np.owner)
    if np.rel is not None:
        out += ["qui"] + _fr_vp(np.rel, (3, plural, fem))
    return out


def _fr_vp(vp: VP, agr: Agreement) -> list[str]:
    person, plural, fem = agr
    index = person - 1 + 3 * plural
    neg = ["ne"] if vp.neg else []
    pas = ["pas"] if vp.neg else []
    if vp.verb == "be":
        rest = [ADJECTIVES[vp.adj].form(fem, plural)] if vp.adj else _fr_pp(vp.pp)  # type: ignore[arg-type]
        return neg + [ETRE[index]] + pas + rest
    verb = VERBS[vp.verb]
    out = list(neg)
    if isinstance(vp.obj, Pron):
        out.append(OBJECT_PRONOUNS[vp.obj.word])  # je le vois
    out += [verb.fr[index]] + pas
    if isinstance(vp.obj, NP):
        out += verb.fr_prep.split() + _fr_np(vp.obj, neg_obj=vp.neg and not verb.fr_prep)
    if vp.dat is not None:
        out += ["à"] + _fr_np(vp.dat)
    if vp.pp is not None:
        out += _fr_pp(vp.pp)
    return out


def _fr_pp(pp: PP) -> list[str]:
    return PREPOSITIONS[pp.prep].split() + _fr_np(pp.np)


def _fr_subject(subj: Subject) -> list[str]:
    if isinstance(subj, Pron):
        return [SUBJECT_PRONOUNS[subj.word][0]]
    if isinstance(subj, Coord):
        return _fr_np(subj.items[0]) + ["et"] + _fr_np(subj.items[1])
    return _fr_np(subj)


def _fr_finish(tokens: list[str]) -> list[str]:
    """Apply elision (right to left: de le homme -> de l'homme), then contractions."""
    elided: list[str] = []
    for tok in reversed(tokens):
        if elided and tok in FR_ELIDABLE and _fr_vowel(elided[-1]):
            elided[-1] = tok[:-1] + "'" + elided[-1]
        else:
            elided.append(tok)
    out: list[str] = []
    for tok in reversed(elided):
        if out and (out[-1], tok) in FR_CONTRACTIONS:
            out[-1] = FR_CONTRACTIONS[(out[-1], tok)]
        else:
            out.append(tok)
    return out


def render_french(sentence: Sentence) -> str:
    out: list[str] = []
    for i, clause in enumerate(sentence.clauses):
        if i:
            out.append(CONJUNCTIONS[sentence.conjs[i - 1]])
        out += _fr_subject(clause.subj) + _fr_vp(clause.vp, _agreement(clause.subj))
    return " ".join(_fr_finish(out) + ["."])


# --------------------------------------------------------------------------
# English parser: translate_sentence is a function of the English string
# --------------------------------------------------------------------------

_EN_NOUN_FORMS: dict[str, tuple[str, bool]] = {}
for _noun in NOUNS.values():
    _EN_NOUN_FORMS[_noun.en_sg] = (_noun.en_sg, False)
    _EN_NOUN_FORMS[_noun.en_pl] = (_noun.en_sg, True)
_EN_VERB_FORMS: dict[str, list[tuple[str, list[str]]]] = {}  # first word -> (key, words)
for _verb in sorted(VERBS.values(), key=lambda v: -len(v.en.split())):
    for _form in dict.fromkeys((_verb.en, _verb.en_3sg)):
        _head, *_rest = _form.split()
        _EN_VERB_FORMS.setdefault(_head, []).append((_verb.en, _rest))
_EN_DETS = {det for det, _, _ in DETERMINERS} | {"an", ANY}
_EN_PREPS = sorted(PREPOSITIONS, key=lambda p: -len(p.split()))


class ParseError(ValueError):
    """The sentence is not in the mini-language."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = text.split()
        self.i = 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ""

    def take(self, *expected: str) -> str:
        tok = self.peek()
        if not tok or (expected and tok not in expected):
            raise ParseError(f"unexpected {tok!r} at token {self.i} of {' '.join(self.toks)!r}")
        self.i += 1
        return tok

    def sentence(self) -> Sentence:
        clauses, conjs = [self.clause()], []
        while self.peek() in CONJUNCTIONS:
            conjs.append(self.take())
            clauses.append(self.clause())
        self.take(".")
        if self.i != len(self.toks):
            raise ParseError(f"trailing tokens in {' '.join(self.toks)!r}")
        return Sentence(tuple(clauses), tuple(conjs))

    def clause(self) -> Clause:
        if self.peek() in SUBJECT_PRONOUNS:
            subj: Subject = Pron(self.take())
        else:
            subj = self.np(allow_rel=True)
            if subj.rel is None and self.peek() == "and":
                self.take()
                subj = Coord((subj, self.np()))
        return Clause(subj, self.vp())

    def nominal(self) -> tuple[tuple[str, ...], str, bool]:
        adjs = []
        while self.peek() in ADJECTIVES:
            adjs.append(self.take())
        tok = self.take()
        if tok not in _EN_NOUN_FORMS:
            raise ParseError(f"unknown noun {tok!r}")
        noun, plural = _EN_NOUN_FORMS[tok]
        return tuple(adjs), noun, plural

    def np(self, allow_rel: bool = False) -> NP:
        det = self.take(*_EN_DETS)
        adjs, noun, plural = self.nominal()
        np = NP("a" if det == "an" else det, noun, plural, adjs)
        if self.peek() == "'s":
            self.take()
            adjs, noun, plural = self.nominal()
            np = NP(None, noun, plural, adjs, owner=np)
        if allow_rel and self.peek() in ("who", "that"):
            self.take()
            np = replace(np, rel=self.vp())
        return np

    def pp(self) -> PP:
        for prep in _EN_PREPS:
            words = prep.split()
            if self.toks[self.i : self.i + len(words)] == words:
                self.i += len(words)
                return PP(prep, self.np())
        raise ParseError(f"expected a preposition at {self.peek()!r}")

    def vp(self) -> VP:
        if self.peek() in ("am", "is", "are"):
            self.take()
            neg = self.peek() == "not"
            if neg:
                self.take()
            if self.peek() in ADJECTIVES:
                return VP("be", neg, adj=self.take())
            return VP("be", neg, pp=self.pp())
        neg = self.peek() in ("do", "does")
        if neg:
            self.take()
            self.take("not")
        head = self.take()
        for key, rest in _EN_VERB_FORMS.get(head, []):
            if self.toks[self.i : self.i + len(rest)] == rest:
                self.i += len(rest)
                break
        else:
            raise ParseError(f"unknown verb {head!r}")
        verb = VERBS[key]
        obj: NP | Pron | None = None
        if verb.obj:
            if "p" in verb.flags and self.peek() in OBJECT_PRONOUNS:
                obj = Pron(self.take())
            elif self.peek() in _EN_DETS:
                obj = self.np()
            elif "o" not in verb.flags:
                raise ParseError(f"{key!r} needs an object")
        dat = None
        if "d" in verb.flags and self.peek() == "to":
            self.take()
            dat = self.np()
        pp = self.pp() if any(self.peek() == p.split()[0] for p in _EN_PREPS) else None
        return VP(key, neg, obj, dat, pp)


def parse_english(text: str) -> Sentence:
    """Parse a sentence of the mini-language (lowercase, final " .")."""
    return _Parser(text).sentence()


def translate_sentence(english: str) -> str:
    """The reference translation of any sentence of the mini-language."""
    return render_french(parse_english(english))


# --------------------------------------------------------------------------
# Random generation
# --------------------------------------------------------------------------

T = TypeVar("T")


def _meets(classes: str, wanted: str) -> bool:
    """Do two class strings share a letter?"""
    return any(c in wanted for c in classes)


class _Generator:
    """Draws random sentence structures; only ``rng.random()`` is used."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self._memo: dict[tuple[str, ...], list] = {}
        self.verbs_by_kind: dict[str, list[Verb]] = {
            "intrans": [v for v in VERBS.values() if not v.obj and not (set(v.flags) & set("tf"))],
            "trans": [v for v in VERBS.values() if v.obj and "d" not in v.flags],
            "ditrans": [v for v in VERBS.values() if "d" in v.flags],
            "move": [v for v in VERBS.values() if "t" in v.flags],
        }

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.rng.random() * len(items))]

    def weighted(self, items: Sequence[T], weights: Sequence[float]) -> T:
        x = self.rng.random() * sum(weights)
        for item, w in zip(items, weights):
            x -= w
            if x < 0:
                return item
        return items[-1]

    def memo(self, key: tuple[str, ...], make: Callable[[], list]) -> list:
        """Cache candidate lists (lists only: their order is fixed)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def nouns(self, classes: str) -> list[str]:
        return self.memo(("nouns", classes),
                         lambda: [k for k, n in NOUNS.items() if _meets(n.classes, classes)])

    def fitting_adjectives(self, classes: str, pre: bool | None = None) -> list[str]:
        """Adjectives describing any of ``classes`` (pre=None: both positions)."""
        return self.memo(("adjs", classes, str(pre)), lambda: [
            a.en for a in ADJECTIVES.values() if _meets(a.classes, classes) and pre in (None, a.pre)])

    def adjectives(self, noun: str, size: str) -> tuple[str, ...]:
        n = self.weighted([0, 1, 2], P_ADJ_COUNT[size])
        if n == 0:
            return ()
        classes = NOUNS[noun].classes
        pre, post = self.fitting_adjectives(classes, True), self.fitting_adjectives(classes, False)
        if n == 2 and pre and post:
            return (self.choice(pre), self.choice(post))
        return (self.choice(self.fitting_adjectives(classes)),)

    def determiner(self, plural: bool, role: str) -> str:
        """role: "subj", "obj", "negobj" (after a negated verb), "pp", "owner"."""

        def make() -> list:
            dets, weights = [], []
            for det, number, w in DETERMINERS:
                if number == ("s" if plural else "p") or (role in ("pp", "owner") and det == "some"):
                    continue
                dets.append(ANY if role == "negobj" and det == "some" else det)
                weights.append(w)
            return [dets, weights]

        dets, weights = self.memo(("dets", str(plural), role), make)
        return self.weighted(dets, weights)

    def np(self, classes: str, role: str, size: str = "full") -> NP:
        noun = self.choice(self.nouns(classes))
        plural = role != "owner" and self.chance(P_PLURAL)
        np = NP(self.determiner(plural, role), noun, plural, self.adjectives(noun, size))
        if role in ("subj", "obj") and self.chance(P_POSSESSIVE):
            owner_noun = self.choice(self.nouns("P"))
            owner = NP(self.determiner(False, "owner"), owner_noun, False,
                       self.adjectives(owner_noun, "small"))
            np = replace(np, det=None, owner=owner)
        return np

    def subject(self, classes: str) -> Subject:
        if "P" in classes and self.chance(P_PRONOUN_SUBJ):
            return Pron(self.choice(list(SUBJECT_PRONOUNS)))
        if self.chance(P_COORD_SUBJ):
            first = self.np(classes, "subj", "small")
            shared = "".join(c for c in NOUNS[first.noun].classes if c in classes)
            second = self.np(shared, "subj", "small")
            if first.noun != second.noun:
                return Coord((first, second))
        np = self.np(classes, "subj")
        if self.chance(P_RELATIVE):
            animate = set(NOUNS[np.noun].classes) & set("PA")
            kind = self.weighted(*REL_CLAUSE_KINDS) if animate else "be_adj"
            np = replace(np, rel=self.vp(kind, np))
        return np

    def pp(self, classes: str, companion: bool = False) -> PP:
        if companion:
            return PP(self.choice(COMPANION_PREPS), self.np("PA", "pp", "small"))
        np = self.np(classes, "pp", "small")
        place = "L" in NOUNS[np.noun].classes
        return PP(self.choice(PLACE_PREPS if place else SURFACE_PREPS), np)

    def vp(self, kind: str, subj: Subject) -> VP:
        """A verb phrase whose verb suits the subject."""
        neg = self.chance(P_NEGATION)
        if isinstance(subj, Pron):
            classes = "P"
        elif isinstance(subj, Coord):
            second = NOUNS[subj.items[1].noun].classes
            classes = "".join(c for c in NOUNS[subj.items[0].noun].classes if c in second)
        else:
            classes = NOUNS[subj.noun].classes
        if kind == "be_adj":
            return VP("be", neg, adj=self.choice(self.fitting_adjectives(classes)))
        if kind == "be_pp":
            return VP("be", neg, pp=self.pp("LS"))
        verbs = self.memo(("verbs", kind, classes),
                          lambda: [v for v in self.verbs_by_kind[kind] if _meets(v.subj, classes)])
        verb = self.choice(verbs)
        obj: NP | Pron | None = None
        if verb.obj and not ("o" in verb.flags and self.chance(P_DROP_OBJ)):
            clash = REFLEXIVE_CLASH.get(subj.word, ()) if isinstance(subj, Pron) else ()
            if "p" in verb.flags and self.chance(P_PRONOUN_OBJ):
                obj = Pron(self.choice(self.memo(("objpron", *clash),
                                                 lambda: [p for p in OBJECT_PRONOUNS if p not in clash])))
            else:
                role = "negobj" if neg and not verb.fr_prep else "obj"
                obj = self.np(verb.obj, role)
        dat = self.np("P", "pp", "small") if "d" in verb.flags and self.chance(P_DATIVE) else None
        pp = None
        if "t" in verb.flags:
            prep = self.choice(["to", "from"]) if "f" in verb.flags else "to"
            pp = PP(prep, self.np("L", "pp", "small"))
        elif "l" in verb.flags and self.chance(P_LOCATION):
            pp = self.pp("LS")
        elif "c" in verb.flags and self.chance(P_COMPANION):
            pp = self.pp("PA", companion=True)
        return VP(verb.en, neg, obj, dat, pp)

    def clause(self) -> Clause:
        kind = self.weighted(*CLAUSE_KINDS)
        if kind == "be_adj":
            subj = self.subject("PATFDVSLRM")
        elif kind == "be_pp":
            subj = self.subject("PATV")
        else:
            subj = self.subject("PA")
        return Clause(subj, self.vp(kind, subj))

    def sentence(self) -> Sentence:
        n = self.weighted(*CLAUSES_PER_SENTENCE)
        clauses = tuple(self.clause() for _ in range(n))
        conjs = tuple(self.weighted(["and", "but"], [0.7, 0.3]) for _ in range(n - 1))
        return Sentence(clauses, conjs)

    def shuffle(self, items: list[T]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = int(self.rng.random() * (i + 1))
            items[i], items[j] = items[j], items[i]


def n_words(sentence: str) -> int:
    """Token count, final "." included."""
    return len(sentence.split())


def generate(
    seed: int = DEFAULT_SEED, sizes: dict[str, int] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Unique (english, french) pairs split into "train", "dev" and "test".

    ``sizes`` overrides SPLIT_SIZES (for quick experiments and tests).
    """
    sizes = sizes or SPLIT_SIZES
    gen = _Generator(seed)
    total = sum(sizes.values())
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < total:
        sentence = gen.sentence()
        en, fr = render_english(sentence), render_french(sentence)
        if en in seen or not all(MIN_WORDS <= n_words(s) <= MAX_WORDS for s in (en, fr)):
            continue
        seen.add(en)
        pairs.append((en, fr))
    gen.shuffle(pairs)  # short sentences run out first: do not let order bias the split
    splits: dict[str, list[tuple[str, str]]] = {}
    start = 0
    for name in ("test", "dev", "train"):
        splits[name] = pairs[start : start + sizes[name]]
        start += sizes[name]
    return {name: splits[name] for name in ("train", "dev", "test")}


def corpus_files(corpus: dict[str, list[tuple[str, str]]]) -> dict[str, bytes]:
    """File name -> exact bytes ("train.en" ...): UTF-8, one sentence a line, LF."""
    files: dict[str, bytes] = {}
    for split, pairs in corpus.items():
        for side, lang in ((0, "en"), (1, "fr")):
            text = "".join(pair[side] + "\n" for pair in pairs)
            files[f"{split}.{lang}"] = text.encode("utf-8")
    return files


def lexicon_files() -> dict[str, bytes]:
    """What the generator knows about its words, for the embedding lab (`nmt embeddings RUN
    compare-word2vec --analogies … --classes …`), one file of each per language:

    - analogies.<lang>.txt: "a b c d" (a − b + c = d) over GENDERED_PAIRS, for every ordered couple
      (A, B) of two pairs B_m − A_m + A_f = B_f (with A = man, B = king: "king man woman queen")
      and B_f − A_f + A_m = B_m;
    - classes.<lang>.tsv: word, class (noun, adjective, verb) and, for nouns and French adjective
      forms, the French gender (m or f; of the noun's translation for English nouns). A word of two
      classes is left out; a gender that two entries disagree on is left empty.
    """
    files: dict[str, bytes] = {}
    for lang, (m, f) in (("en", (0, 1)), ("fr", (2, 3))):
        lines = [f"{b[m]} {a[m]} {a[f]} {b[f]}\n{b[f]} {a[f]} {a[m]} {b[m]}"
                 for i, a in enumerate(GENDERED_PAIRS) for j, b in enumerate(GENDERED_PAIRS) if i != j]
        files[f"analogies.{lang}.txt"] = "".join(line + "\n" for line in lines).encode("utf-8")
    entries: dict[str, list[tuple[str, str, str]]] = {"en": [], "fr": []}
    for noun in NOUNS.values():
        gender = "f" if noun.fem else "m"
        entries["en"] += [(w, "noun", gender) for w in (noun.en_sg, noun.en_pl)]
        entries["fr"] += [(w, "noun", gender) for w in (noun.fr_sg, noun.fr_pl)]
    for adj in ADJECTIVES.values():
        entries["en"].append((adj.en, "adjective", ""))
        entries["fr"] += [(w, "adjective", g) for w, g in zip(adj.fr, ("m", "f", "m", "f"))]
    for verb in VERBS.values():
        entries["en"] += [(w, "verb", "") for w in (verb.en, verb.en_3sg)]
        entries["fr"] += [(w, "verb", "") for w in verb.fr]
    for lang, found in entries.items():
        classes: dict[str, set[str]] = {}
        genders: dict[str, set[str]] = {}
        for word, cls, gender in found:
            if " " in word:  # "wait for": not one token
                continue
            classes.setdefault(word, set()).add(cls)
            genders.setdefault(word, set()).add(gender)
        rows = []
        for word in sorted(classes):
            if len(classes[word]) == 1:
                gender = genders[word].pop() if len(genders[word]) == 1 else ""
                rows.append("\t".join([word, *classes[word], *([gender] if gender else [])]))
        files[f"classes.{lang}.tsv"] = "".join(row + "\n" for row in rows).encode("utf-8")
    return files


def summary(corpus: dict[str, list[tuple[str, str]]]) -> str:
    lines = ["pairs: " + ", ".join(f"{k} {len(v)}" for k, v in corpus.items())]
    for side, lang in ((0, "en"), (1, "fr")):
        sents = [pair[side] for pairs in corpus.values() for pair in pairs]
        lengths = [n_words(s) for s in sents]
        vocab = {tok for s in sents for tok in s.split()}
        train_vocab = {tok for en_fr in corpus["train"] for tok in en_fr[side].split()}
        lines.append(
            f"{lang}: vocabulary {len(vocab)} (train {len(train_vocab)}), "
            f"words/sentence min {min(lengths)} mean {sum(lengths) / len(lengths):.2f} max {max(lengths)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory; exit 1 if the files on disk differ")
    args = parser.parse_args(argv)
    corpus = generate(args.seed)
    files = corpus_files(corpus) | lexicon_files()
    if args.check:
        for name, data in files.items():
            path = args.out / name
            if not path.is_file() or path.read_bytes() != data:
                print(f"{path} differs from generate(seed={args.seed}); "
                      f"rerun scripts/make_toy_data.py --seed {args.seed}", file=sys.stderr)
                return 1
        print(f"{args.out}: all {len(files)} files match seed {args.seed}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(summary(corpus))
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
